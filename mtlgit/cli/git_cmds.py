"""Commands that read the pool's history: review and log."""

from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option


@click.command()
@click.argument("range_spec", required=False, metavar="[BASE..HEAD]")
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1 when a changed memory has an error, or the branch orphans a memory's cited code (review.orphans).",
)
@json_option
def review(range_spec: str | None, check: bool, as_json: bool) -> None:
    """Report a branch's memory changes as Markdown for a pull-request comment.

    Lists memories added, changed, retired and deleted; lint findings; for each new memory the closest ones
    already in the base pool (near-duplicates flagged); abstraction warnings; the memories whose cited code
    the branch changes, with the hunks. Without a range: the reviewed ref ... HEAD (reviewed_ref of
    .mtlgit.yaml; default: the remote's default branch, origin/HEAD).

    \b
    Example:
        mtlgit review origin/main...HEAD
        mtlgit review main..feature --check > review.md
    """
    from mtlgit.ledger import review_section, usefulness_json
    from mtlgit.repo import find_repo
    from mtlgit.review import markdown
    from mtlgit.review import review as run_review

    repo = find_repo()
    result = run_review(repo, range_spec)
    changed = [(str(c.memory["id"]), str(c.memory.get("title"))) for c in result.changes if c.memory]
    if as_json:
        echo_json({**result.to_json(), "usefulness": usefulness_json(repo, [i for i, _title in changed])})
    else:
        section = review_section(repo, changed)
        click.echo(markdown(result) + (f"\n{section}" if section else ""), nl=False)
    if check and (result.errors or result.failed_orphans):
        raise click.exceptions.Exit(1)


@click.command("log")
@click.argument("ref", metavar="ID")
@json_option
def log(ref: str, as_json: bool) -> None:
    """Show the history of one memory from git, across renames (newest first).

    \b
    Example:
        mtlgit log 01JDQ2V6
        mtlgit log 01JDQ2V6R3J8Z6TT4M0S3W4K9B --json   # also finds a deleted memory by its full id
    """
    from mtlgit.history import memory_log

    memory_id, entries = memory_log(open_pool(), ref)
    if as_json:
        echo_json({"id": memory_id, "history": [e.to_json() for e in entries]})
        return
    click.echo(f"History of {memory_id}:")
    for e in entries:
        status = f" [{e.status}]" if e.status else ""
        click.echo(f"{e.commit[:10]}  {e.date}  {e.author:<18}  {e.change:<10} {e.path}{status}  {e.subject}")
