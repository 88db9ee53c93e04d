from __future__ import annotations

import time

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option


@click.command("index")
@click.option("--rebuild", is_flag=True, help="Ignore the current snapshot and rebuild from the files.")
@json_option
def index(rebuild: bool, as_json: bool) -> None:
    """Build or refresh the recall index under .git/mtlgit/.

    Recall refreshes it by itself when files change; run this to warm it, or with --rebuild after an upgrade.

    \b
    Example:
        mtlgit index
        mtlgit index --rebuild
    """
    import sys

    from mtlgit.index import WorktreeIndex
    from mtlgit.repo import find_repo

    started = time.perf_counter()
    snapshot = WorktreeIndex(find_repo()).refresh(rebuild=rebuild, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    manifest = snapshot.manifest
    if as_json:
        echo_json(
            {
                "memories": snapshot.n_docs,
                "files": manifest["files"],
                "unreadable_files": manifest["problem_files"],
                "seconds": round(seconds, 3),
                "snapshot": snapshot.folder.name,
            }
        )
    else:
        unreadable = (
            f", {manifest['problem_files']} unreadable (see `mtlgit lint`)" if manifest["problem_files"] else ""
        )
        click.echo(f"Indexed {snapshot.n_docs} memories from {manifest['files']} files{unreadable} in {seconds:.2f} s")
