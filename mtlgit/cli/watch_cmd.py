from __future__ import annotations

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.errors import MtlgitError


@click.command("watch")
@click.option("--stop", is_flag=True, help="Stop this worktree's watcher.")
@click.option("--status", "show_status", is_flag=True, help="Say whether a watcher runs, and what it watches.")
@json_option
def watch(stop: bool, show_status: bool, as_json: bool) -> None:
    """Start this worktree's watcher of the memory folders (Linux), so a recall need not stat every file.

    A recall on a pool of 5,000 files or more starts it by itself (`recall.freshness: auto`). It exits after
    an hour without a recall, or when the repository is removed. Without a watcher, recall checks every
    file's stat instead: never stale either way.

    \b
    Example:
        mtlgit watch
        mtlgit watch --status
        mtlgit watch --stop
    """
    from mtlgit import watch as watcher
    from mtlgit.config import load_config
    from mtlgit.repo import find_repo

    repo = find_repo()
    state = repo.worktree_state_dir
    if stop:
        stopped = watcher.stop(state)
        if as_json:
            echo_json({"stopped": stopped})
        else:
            click.echo("Stopped the watcher." if stopped else "No watcher was running.")
        return
    if not show_status:
        if not watcher.available():
            raise MtlgitError("mtlgit watch needs Linux (inotify): elsewhere, recall checks every file's stat")
        if watcher.status(state) is None:
            watcher.start(repo.root, state, load_config(repo.root).memories)
            if not watcher.wait_until_running(state):
                raise MtlgitError(f"the watcher did not start: see {state / watcher.INFO}")
    info = watcher.status(state)
    if as_json:
        echo_json({"running": info is not None, **(info or {})})
    elif info is None:
        click.echo("No watcher runs: recall checks every file's stat (`mtlgit watch` starts one).")
    else:
        click.echo(f"A watcher runs (pid {info.get('pid')}) on {info.get('root')}/{info.get('memories')}.")
