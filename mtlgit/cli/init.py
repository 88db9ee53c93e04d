from __future__ import annotations

from pathlib import Path

import click

from mtlgit.cli.main import open_pool
from mtlgit.errors import MtlgitError


@click.command()
@click.option("--memories", "folder", default="memories", show_default=True, help="Folder for the memory files.")
@click.option(
    "--hooks/--no-hooks",
    "with_hooks",
    default=None,
    help="Install the git hooks (asked on a terminal; not installed otherwise).",
)
@click.option("--starter", is_flag=True, help="Copy mtlgit's starter pool of task-agnostic memories in.")
@click.pass_context
def init(ctx: click.Context, folder: str, with_hooks: bool | None, starter: bool) -> None:
    """Set up mtlgit in the current git repository.

    Writes .mtlgit.yaml and creates the memories folder. An existing .mtlgit.yaml is never overwritten: in a
    clone of a project that uses mtlgit already, init keeps it and does the rest (the folder, --starter, --hooks).

    \b
    Example:
        git init myproject && cd myproject
        mtlgit init --hooks --starter
    """
    from mtlgit.cli.drafts import interactive
    from mtlgit.config import CONFIG_NAME, DEFAULT_CONFIG_TEXT
    from mtlgit.repo import find_repo

    folder_given = ctx.get_parameter_source("folder") is not click.core.ParameterSource.DEFAULT
    repo = find_repo()
    config_path = repo.root / CONFIG_NAME
    if config_path.exists():
        pool = open_pool()
        if folder_given and folder != pool.config.memories:
            raise MtlgitError(
                f"{CONFIG_NAME} already exists and names the folder {pool.config.memories}/, not {folder}/: "
                f"nothing changed; edit `memories:` in {CONFIG_NAME} to move it"
            )
        pool.memories_dir.mkdir(parents=True, exist_ok=True)
        click.echo(f"mtlgit is set up in {repo.root} already: {CONFIG_NAME} kept as it is, {pool.config.memories}/")
    else:
        text = DEFAULT_CONFIG_TEXT.replace("memories: memories", f"memories: {folder}")
        config_path.write_text(text, encoding="utf-8")
        pool = open_pool()
        pool.memories_dir.mkdir(parents=True, exist_ok=True)
        click.echo(f"Initialised mtlgit in {repo.root}: {CONFIG_NAME}, {pool.config.memories}/")
    if starter:
        copied, kept = copy_starter(pool.memories_dir)
        note = f" ({kept} already there, left alone)" if kept else ""
        click.echo(f"Copied {copied} starter memories into {pool.config.memories}/{note}")
    if with_hooks is None and interactive():
        with_hooks = click.confirm(
            "Install git hooks (lint memories before each commit, refresh the index after commits and checkouts)?",
            default=True,
        )
    if with_hooks:
        from mtlgit import hooks

        for line in hooks.install(repo):
            click.echo(f"  hook {line}")
    else:
        click.echo("Git hooks not installed: `mtlgit hooks install` adds them.")
    click.echo('Next: `mtlgit recall "<a task>"` before a task; `mtlgit add --help` to keep a lesson after one')


def copy_starter(target: Path) -> tuple[int, int]:
    """Copy the starter pool into ``target``; an existing file is never overwritten. (copied, left alone)"""
    import shutil

    from mtlgit.resources import starter_dir

    source = starter_dir()
    copied = kept = 0
    for path in sorted(source.rglob("*.md")):
        destination = target / path.relative_to(source)
        if destination.exists():
            kept += 1
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        copied += 1
    return copied, kept
