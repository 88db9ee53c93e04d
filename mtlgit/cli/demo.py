from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--keep", type=click.Path(file_okay=False, path_type=Path), help="Build the demo repository here and keep it."
)
def demo(keep: Path | None) -> None:
    """Show the main job on a throw-away repository: pool, index, recall, prompt block, a new memory.

    Works offline; nothing outside the temporary folder is touched.

    \b
    Example:
        mtlgit demo
        mtlgit demo --keep /tmp/mtlgit-demo && cd /tmp/mtlgit-demo && mtlgit list
    """
    from mtlgit.demo import run_demo

    run_demo(click.echo, keep)
