from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option


@click.command()
@click.argument("ref", metavar="ID")
@json_option
def show(ref: str, as_json: bool) -> None:
    """Print one memory, by id, id prefix or file path.

    \b
    Example:
        mtlgit show 01JDQ2V6
        mtlgit show 01JDQ2V6 --json
    """
    pool = open_pool()
    memory = pool.get(ref, indexed=True)
    if as_json:
        echo_json(memory.to_json())
        return
    click.echo(f"# {memory.path}")
    click.echo((pool.root / memory.path).read_text(encoding="utf-8"), nl=False)
