from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option
from mtlgit.cli.paths import from_here


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--fix-ids", is_flag=True, help="Give a new id to files whose id is missing or duplicated.")
@click.option(
    "--stale", is_flag=True, help="List only memories whose cited code drifted or is gone (docs/citations.md)."
)
@json_option
def lint(paths: tuple[Path, ...], strict: bool, fix_ids: bool, stale: bool, as_json: bool) -> None:
    """Check memory files: front matter, fields, content, duplicate ids, superseded_by links.

    PATHS are memory files or folders (searched recursively); default: every memory. A path that does not
    exist or is outside the memories folder is an error; README.md and hidden files in it are reported as
    skipped.

    Paths are printed relative to the current directory (--json: to the repository's root). Exits 1 when there
    are errors (or warnings, with --strict), 0 otherwise.

    \b
    Example:
        mtlgit lint
        mtlgit lint memories/workflow
        mtlgit lint memories/insight/run-tests-first-4k9b2c1d.md --json
        mtlgit lint --stale
    """
    from mtlgit.lint import fix_ids as do_fix_ids
    from mtlgit.lint import lint_pool

    pool = open_pool()
    if fix_ids:
        for path, new_id in do_fix_ids(pool):
            click.echo(f"{from_here(pool.root, path)}: new id {new_id}")
    report = lint_pool(pool, list(paths) if paths else None, stale=stale)
    if as_json:
        echo_json(report.to_json())
    else:
        for problem in report.problems:
            click.echo(str(dataclasses.replace(problem, path=from_here(pool.root, problem.path))))
        for path in report.skipped:
            click.echo(
                f"{from_here(pool.root, path)}: skipped: not a memory file (mtlgit skips README.md, hidden files and "
                "non-.md files)"
            )
        skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
        click.echo(
            f"{report.files} file(s) checked{skipped}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        )
        if not report.files:
            from mtlgit.config import missing_memories_folder

            missing = missing_memories_folder(pool.root, pool.config.memories)
            if missing:
                click.echo(f"note: {missing}", err=True)
    if report.failed(strict):
        raise click.exceptions.Exit(1)
