from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option
from mtlgit.cli.paths import from_here


@click.command()
@click.argument("ref", metavar="ID")
@click.option("--pool", "pools", multiple=True, metavar="NAME", help="Look in this pool only ('local': this repo).")
@json_option
def show(ref: str, pools: tuple[str, ...], as_json: bool) -> None:
    """Print one memory, by id, id prefix or file path; the memories of synced pools too.

    \b
    Example:
        mtlgit show 01JDQ2V6
        mtlgit show 01JDQ2V6 --json
        mtlgit show 01M8RX8B --pool platform
    """
    from mtlgit.pools import PoolMemory, lookup, read_texts

    pool = open_pool()
    memory = lookup(pool, ref, pools)
    if isinstance(memory, PoolMemory):
        if as_json:
            echo_json(memory.to_json())
            return
        click.echo(f"# pool '{memory.pool}': {memory.path} at {memory.commit[:10]}")
        click.echo(read_texts(pool.repo, [memory])[f"{memory.pool}:{memory.path}"], nl=False)
        return
    if as_json:
        echo_json(memory.to_json())
        return
    click.echo(f"# {from_here(pool.root, memory.path)}")
    click.echo((pool.root / memory.path).read_text(encoding="utf-8"), nl=False)
