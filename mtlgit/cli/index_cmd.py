from __future__ import annotations

import time

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.errors import MtlgitError


@click.command("index")
@click.option("--rebuild", is_flag=True, help="Ignore the current snapshot and rebuild from the files.")
@click.option(
    "--check",
    is_flag=True,
    help="Verify every checksum (snapshots, cache, model tables), repair what is damaged; exit 1 if anything was.",
)
@json_option
def index(rebuild: bool, check: bool, as_json: bool) -> None:
    """Build or refresh the recall index under .git/mtlgit/.

    Recall refreshes it by itself when files change; run this to warm it, or with --rebuild after an upgrade.
    With --check, read every file of the index against its checksum and repair what fails.

    \b
    Example:
        mtlgit index
        mtlgit index --rebuild
        mtlgit index --check
    """
    import sys

    from mtlgit.index import WorktreeIndex, check_all
    from mtlgit.repo import find_repo

    started = time.perf_counter()
    if check:
        report = check_all(find_repo())
        seconds = time.perf_counter() - started
        if as_json:
            echo_json({**report.__dict__, "seconds": round(seconds, 3)})
        else:
            for line in report.damaged:
                click.echo(f"damaged: {line}")
            for line in report.repaired:
                click.echo(f"repaired: {line}")
            verdict = f"{len(report.damaged)} damaged" if report.damaged else "all intact"
            click.echo(f"Checked {len(report.checked)} parts of the index in {seconds:.2f} s: {verdict}")
        if report.damaged:
            raise SystemExit(1)
        return
    worktree = WorktreeIndex(find_repo())
    progress = sys.stderr.isatty()
    snapshot = (
        worktree.refresh(rebuild=True, progress=progress)
        if rebuild
        else worktree.fresh(progress=progress, thorough=True)
    )
    if not snapshot.saved:
        repo = find_repo()
        reason = snapshot.unsaved_reason or "cannot write there"
        raise MtlgitError(f"{repo.state_dir / 'index'}: {reason}: could not save the index")
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
                "segments": len(snapshot.segments),
            }
        )
    else:
        unreadable = (
            f", {manifest['problem_files']} unreadable (see `mtlgit lint`)" if manifest["problem_files"] else ""
        )
        click.echo(f"Indexed {snapshot.n_docs} memories from {manifest['files']} files{unreadable} in {seconds:.2f} s")
