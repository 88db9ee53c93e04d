"""What ``mtlgit recall`` does once its arguments are parsed, free of click: shared by the click command and
by the fast path of :mod:`mtlgit.cli.fast`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from mtlgit.errors import MtlgitError


def run(
    query: Sequence[str],
    query_file: Path | None,
    hook_input: bool,
    k: int | None,
    mode: str | None,
    formats: Sequence[str],
    domains: Sequence[str],
    exclude_domains: Sequence[str],
    tags: Sequence[str],
    scopes: Sequence[str],
    include_retired: bool,
    include_trajectories: bool,
    pools: Sequence[str],
    rev: str | None,
    reviewed: bool,
    output: str | None,
    min_confidence: float | None = None,
    explain: bool = False,
) -> None:
    from mtlgit import render
    from mtlgit.recall import Filters, recall

    if hook_input:
        text = hook_prompt(sys.stdin.read())
    elif query_file is not None:
        try:
            text = query_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise MtlgitError(f"cannot read {query_file}: {exc.strerror}") from None
    elif list(query) in ([], ["-"]):
        text = sys.stdin.read()
    else:
        text = " ".join(query)
    if not text.strip():
        raise MtlgitError("the query is empty: describe the task to recall memories for")
    filters = Filters(
        formats=tuple(formats),
        domains=tuple(domains),
        exclude_domains=tuple(exclude_domains),
        tags=tuple(tags),
        scopes=tuple(scopes),
        include_retired=include_retired,
        include_trajectories=include_trajectories,
    )
    result = recall(
        text,
        k=k,
        mode=mode,
        filters=filters,
        rev=rev,
        reviewed=reviewed,
        pools=tuple(pools) or None,
        min_confidence=min_confidence,
        explain=explain,
    )
    receipt = None
    if output in ("json", "prompt"):
        from mtlgit.receipts import record_recall

        receipt = record_recall(result, tool="hook" if hook_input else "cli")
    out = sys.stdout
    if output == "json":
        import json

        data = {**result.to_json(), "receipt": receipt}
        if explain:
            for item, hit in zip(data["results"], result.hits, strict=True):
                item["explain"] = hit.explain()
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    elif output == "paths":
        if result.hits:
            from mtlgit.pools import hit_copies
            from mtlgit.repo import find_repo

            pooled = any(hit.pool != "local" for hit in result.hits)
            out.write(("\n".join(hit_copies(find_repo(), result.hits)) if pooled else render.paths(result.hits)) + "\n")
    elif output == "prompt":
        if result.hits:
            out.write(render.prompt(result.hits) + "\n")
        if receipt:
            from mtlgit.receipts import receipt_line

            out.write(receipt_line(receipt) + "\n")
    else:
        out.write(render.text(result.hits, explain=explain) + "\n")
    if output != "json":
        if explain and output in ("paths", "prompt") and result.hits:
            sys.stderr.write(render.explanation(result.hits) + "\n")
        if result.reason:
            sys.stderr.write(f"note: nothing recalled: {result.reason}\n")
        for note in result.notes:
            sys.stderr.write(f"note: {note}\n")
        if result.problem_files:
            sys.stderr.write(f"note: {result.problem_files} memory file(s) could not be read; `mtlgit lint` says why\n")


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
