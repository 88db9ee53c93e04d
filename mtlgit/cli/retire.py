from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option
from mtlgit.cli.paths import from_here


@click.command()
@click.argument("ref", metavar="ID")
@click.option("--superseded-by", metavar="ID", help="The memory that replaces this one.")
@json_option
def retire(ref: str, superseded_by: str | None, as_json: bool) -> None:
    """Retire a memory: recall stops returning it; the file and its history stay.

    --superseded-by is refused when the new memory is itself superseded, directly or through others, by this
    one: the cycle would hide them all. A cycle written by hand stays hidden from recall (no memory of it is
    taken for the current one) and `mtlgit lint` reports it as an error naming each file and line.

    \b
    Example:
        mtlgit retire 01JDQ2V6
        mtlgit retire 01JDQ2V6 --superseded-by 01JF0000
    """
    from mtlgit.staleness import orphan_note

    pool = open_pool()
    memory = pool.retire(ref, superseded_by=superseded_by)
    orphaned = orphan_note(pool.root, pool.repo.worktree_state_dir, memory.to_json())
    if orphaned:
        click.echo(f"note: {orphaned}", err=True)
    if as_json:
        echo_json(memory.to_json())
    elif memory.superseded_by:
        click.echo(f"Superseded {memory.id} by {memory.superseded_by} ({from_here(pool.root, memory.path)})")
    else:
        click.echo(f"Retired {memory.id} ({from_here(pool.root, memory.path)})")
