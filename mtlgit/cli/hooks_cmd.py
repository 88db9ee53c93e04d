from __future__ import annotations

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option


@click.group()
def hooks() -> None:
    """Install, remove or inspect mtlgit's git hooks.

    pre-commit lints staged memory files and blocks the commit on errors; post-commit, post-merge,
    post-checkout and post-rewrite refresh the recall index in the background.

    \b
    Example:
        mtlgit hooks install
        mtlgit hooks status
    """


@hooks.command()
def install() -> None:
    """Install the hooks (an existing hook is kept as <hook>.legacy and still runs first).

    \b
    Example:
        mtlgit hooks install
    """
    from mtlgit import hooks as lib
    from mtlgit.repo import find_repo

    for line in lib.install(find_repo()):
        click.echo(line)


@hooks.command()
def uninstall() -> None:
    """Remove mtlgit's hooks and restore the hooks they replaced.

    \b
    Example:
        mtlgit hooks uninstall
    """
    from mtlgit import hooks as lib
    from mtlgit.repo import find_repo

    for line in lib.uninstall(find_repo()) or ["no mtlgit hook was installed"]:
        click.echo(line)


@hooks.command()
@json_option
def status(as_json: bool) -> None:
    """Show which hooks are installed.

    \b
    Example:
        mtlgit hooks status --json
    """
    from mtlgit import hooks as lib
    from mtlgit.repo import find_repo

    states = lib.status(find_repo())
    if as_json:
        echo_json([{"hook": s.name, "state": s.state, "legacy": s.legacy, "python": s.python} for s in states])
    else:
        for state in states:
            click.echo(state.describe())


@click.command("hook-run", hidden=True)
@click.argument("hook_type")
@click.argument("args", nargs=-1)
def hook_run(hook_type: str, args: tuple[str, ...]) -> None:
    """What a git hook runs (called by the scripts `mtlgit hooks install` writes).

    \b
    Example:
        mtlgit hook-run pre-commit
    """
    from mtlgit import hooks as lib
    from mtlgit.repo import find_repo

    repo = find_repo()
    if hook_type in lib.REFRESH_HOOKS:
        lib.refresh(repo, hook_type)
        return
    if hook_type != "pre-commit":
        raise click.UsageError(f"unknown hook '{hook_type}': one of {', '.join(lib.HOOK_TYPES)}")
    _checked, problems = lib.staged_problems(repo)
    errors = [p for p in problems if p.is_error]
    for problem in problems:
        click.echo(str(problem), err=True)
    if errors:
        files = len({p.path for p in errors})
        click.echo(
            f"mtlgit: commit blocked: {files} staged memory file(s) have errors (above). Fix them and `git add` "
            "them again; `git commit --no-verify` skips this check.",
            err=True,
        )
        raise click.exceptions.Exit(1)
