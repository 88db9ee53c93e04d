from __future__ import annotations

import sys
from pathlib import Path

import click

from mtlgit.cli.options import filter_options, split_words
from mtlgit.rules import MODES


@click.command()
@click.argument("query", nargs=-1)
@click.option(
    "--query-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the query from a file ('-' as QUERY reads standard input).",
)
@click.option(
    "--hook-input",
    is_flag=True,
    help="Read an agent hook's JSON from standard input and recall for its 'prompt' (Claude Code).",
)
@click.option("-k", "k", type=int, help="How many memories, 1-1000 (default 3, or recall.k).")
@click.option("--mode", metavar=f"[{'|'.join(MODES)}]", help="Retrieval: hybrid (default), bm25 or dense.")
@filter_options
@click.option("--include-retired", is_flag=True, help="Also recall retired and superseded memories.")
@click.option("--trajectories", "include_trajectories", is_flag=True, help="Also recall trajectories.")
@click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME",
    help="Search only this pool (repeatable; 'local' is this repository's own memories).",
)
@click.option("--local-only", is_flag=True, help="Search only this repository's memories, no other pool.")
@click.option("--rev", metavar="REF", help="Recall from the pool as it was at this commit (read from git).")
@click.option(
    "--reviewed",
    is_flag=True,
    help="Only reviewed memories: local ones whose content is on the reviewed branch, and those of pools marked "
    "'trust: reviewed' (never of an untrusted pool).",
)
@click.option(
    "--min-confidence",
    type=float,
    help="Leave out memories less likely than this to apply (0-1; 0 keeps k; default: recall.min_confidence).",
)
@click.option(
    "--budget",
    type=int,
    metavar="TOKENS",
    help="Most tokens (estimated: 4 characters each) of the --prompt block, also for --json: whole items in rank "
    "order, what is left out said on standard error (default: recall.budget, 2000; 0: no cap).",
)
@click.option("--explain", is_flag=True, help="Show why each memory came up: matched terms, cosine, confidence.")
@click.option(
    "--json",
    "output",
    flag_value="json",
    help="Print JSON; each result's path is relative to the repository's root (a pool's memory: to the pool's).",
)
@click.option(
    "--paths",
    "output",
    flag_value="paths",
    help="Print only the file paths, relative to the current directory (a pool's memory: its local copy).",
)
@click.option("--prompt", "output", flag_value="prompt", help="Print the block to paste into an agent's prompt.")
def recall(
    query: tuple[str, ...],
    query_file: Path | None,
    hook_input: bool,
    k: int | None,
    mode: str | None,
    formats: tuple[str, ...],
    domains: tuple[str, ...],
    exclude_domains: tuple[str, ...],
    tags: tuple[str, ...],
    scopes: tuple[str, ...],
    include_retired: bool,
    include_trajectories: bool,
    pools: tuple[str, ...],
    local_only: bool,
    rev: str | None,
    reviewed: bool,
    min_confidence: float | None,
    budget: int | None,
    explain: bool,
    output: str | None,
) -> None:
    """Recall the memories most relevant to a task (top 3, hybrid BM25 + embedding).

    The index is checked against the files first, so a memory added or edited a moment ago is found.
    The text and --paths outputs print paths relative to the current directory, as `git status` does.

    \b
    Example:
        mtlgit recall "fix a failing pytest test in a django project"
        mtlgit recall --prompt -k 5 "migrate the build to pyproject.toml"
        echo "the task text" | mtlgit recall - --json
        mtlgit recall --rev v1.2 "reproduce the run of last week"
        mtlgit recall --explain --min-confidence 0 "make fails: missing separator"
        mtlgit recall --prompt --budget 800 "upgrade the database driver"
    """
    from mtlgit.cli.recall_run import OPTION_NAMES, read_query, run
    from mtlgit.recall_request import RecallRequest, RequestError

    try:
        request = RecallRequest(
            k=k,
            mode=mode,
            formats=formats,
            domains=tuple(split_words(domains)),
            exclude_domains=tuple(split_words(exclude_domains)),
            tags=tuple(split_words(tags)),
            scopes=scopes,
            include_retired=include_retired,
            include_trajectories=include_trajectories,
            pools=("local",) if local_only else pools,
            rev=rev,
            reviewed=reviewed,
            min_confidence=min_confidence,
            budget=budget,
            explain=explain,
        )
    except RequestError as exc:
        raise click.BadParameter(exc.problem, param_hint=f"'{OPTION_NAMES[exc.field]}'") from None
    if not hook_input and query_file is None and query == () and sys.stdin.isatty():
        raise click.UsageError('give a query: mtlgit recall "describe the task"')
    text = read_query(query, query_file, hook_input)
    run(request.with_query(text), output, tool="hook" if hook_input else "cli")
