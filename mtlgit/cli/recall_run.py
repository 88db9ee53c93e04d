"""What ``mtlgit recall`` does once its arguments are parsed, free of click: shared by the click command and
by the fast path of :mod:`mtlgit.cli.fast`. Both build a :class:`~mtlgit.recall_request.RecallRequest`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mtlgit import render
from mtlgit.errors import MtlgitError
from mtlgit.recall import Recaller
from mtlgit.recall_request import RecallRequest, execute

if TYPE_CHECKING:
    from mtlgit.recall import Hit
    from mtlgit.repo import Repo

# The command line's name of each option a request checks, for click's "Invalid value for ..." messages.
OPTION_NAMES = {
    "k": "-k",
    "mode": "--mode",
    "min_confidence": "--min-confidence",
    "budget": "--budget",
    "formats": "--format",
    "scopes": "--scope",
}


def read_query(query: Sequence[str], query_file: Path | None, hook_input: bool) -> str:
    """The query text: from an agent hook's JSON, a file, standard input (no QUERY, or ``-``) or the words."""
    if hook_input:
        return hook_prompt(sys.stdin.read())
    if query_file is not None:
        try:
            return query_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise MtlgitError(f"cannot read {query_file}: {exc.strerror}") from None
    if list(query) in ([], ["-"]):
        return sys.stdin.read()
    return " ".join(query)


def run(request: RecallRequest, output: str | None, tool: str = "cli") -> None:
    """Recall and print: text (default), ``json``, ``paths`` or ``prompt``; notes go to standard error.

    ``--prompt`` and ``--json`` are fitted to the prompt budget; text and paths, read by people and shells,
    are not.
    """
    recaller = Recaller()
    recalled = execute(request, recaller, budgeted=output in ("json", "prompt"))
    result = recalled.result
    receipt = None
    if output in ("json", "prompt"):
        from mtlgit.receipts import record_recall

        receipt = record_recall(result, tool=tool)
    out = sys.stdout
    if output == "json":
        import json

        data = {**recalled.to_json(), "receipt": receipt}
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    elif output == "paths":
        if result.hits:
            out.write("\n".join(openable_paths(recaller.repo, result.hits)) + "\n")
    elif output == "prompt":
        if result.hits:
            out.write(render.prompt(result.hits) + "\n")
        if receipt:
            from mtlgit.receipts import receipt_line

            out.write(receipt_line(receipt) + "\n")
    else:
        import dataclasses

        shown = [
            dataclasses.replace(hit, path=path)
            for hit, path in zip(result.hits, openable_paths(recaller.repo, result.hits), strict=True)
        ]
        out.write(render.text(shown, explain=request.explain) + "\n")
    left_out = recalled.budget.note() if recalled.budget is not None else None
    if left_out:
        sys.stderr.write(f"note: {left_out}\n")
    if output != "json":
        if request.explain and output in ("paths", "prompt") and result.hits:
            sys.stderr.write(render.explanation(result.hits) + "\n")
        if result.reason:
            sys.stderr.write(f"note: nothing recalled: {result.reason}\n")
        for note in result.notes:
            sys.stderr.write(f"note: {note}\n")
        if result.problem_files:
            sys.stderr.write(f"note: {result.problem_files} memory file(s) could not be read; `mtlgit lint` says why\n")


def openable_paths(repo: Repo, hits: Sequence[Hit]) -> list[str]:
    """Each hit's file as a path that opens from the current directory, relative to it as ``git status``
    prints paths (``../memories/...`` from a subfolder); for a pool's hit, its local copy (absolute when that is
    outside the work tree, as in a linked worktree)."""
    from mtlgit.cli.paths import from_here

    if any(hit.pool != "local" for hit in hits):
        from mtlgit.pools import hit_copies

        from_root = hit_copies(repo, list(hits))
    else:
        from_root = [hit.path for hit in hits]
    return [from_here(repo.root, path) for path in from_root]


def hook_prompt(payload: str) -> str:
    """The user's prompt from an agent hook's JSON (Claude Code's UserPromptSubmit sends ``{"prompt": ...}``)."""
    import json

    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise MtlgitError(f"--hook-input: standard input is not JSON ({exc.msg})") from None
    prompt = data.get("prompt") if isinstance(data, dict) else None
    if not isinstance(prompt, str):
        raise MtlgitError("--hook-input: the JSON has no 'prompt' string")
    return prompt
