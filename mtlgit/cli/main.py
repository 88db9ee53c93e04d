"""The ``mtlgit`` command group: dispatch, shared options and the single error handler.

Subcommands live one per module and are imported only when run, so ``mtlgit recall`` pays for nothing
but the recall path.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from mtlgit.errors import MtlgitError, disk_fault

COMMANDS: dict[str, str] = {
    "init": "mtlgit.cli.init:init",
    "add": "mtlgit.cli.add:add",
    "show": "mtlgit.cli.show:show",
    "list": "mtlgit.cli.listing:list_memories",
    "edit": "mtlgit.cli.edit:edit",
    "retire": "mtlgit.cli.retire:retire",
    "lint": "mtlgit.cli.lint:lint",
    "recall": "mtlgit.cli.recall:recall",
    "index": "mtlgit.cli.index_cmd:index",
    "eval": "mtlgit.cli.eval_cmd:eval_",
    "demo": "mtlgit.cli.demo:demo",
    "hooks": "mtlgit.cli.hooks_cmd:hooks",
    "review": "mtlgit.cli.git_cmds:review",
    "log": "mtlgit.cli.git_cmds:log",
    "dedup": "mtlgit.cli.dedup_cmd:dedup",
    "prompt": "mtlgit.cli.transfer_cmds:prompt",
    "import": "mtlgit.cli.transfer_cmds:import_",
    "export": "mtlgit.cli.transfer_cmds:export",
    "stats": "mtlgit.cli.transfer_cmds:stats",
    "pool": "mtlgit.cli.pool_cmd:pool",
    "mcp": "mtlgit.cli.mcp_cmd:mcp",
    "hook-run": "mtlgit.cli.hooks_cmd:hook_run",
    "feedback": "mtlgit.cli.feedback_cmd:feedback",
    "ledger": "mtlgit.cli.feedback_cmd:ledger",
    "watch": "mtlgit.cli.watch_cmd:watch",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `mtlgit --help` and `--version` print while the arguments are parsed, before invoke.
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:
            raise click.exceptions.Exit(0) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MtlgitError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            # The reader went away (`mtlgit export | head`): not a failure, though click would exit 1 for it.
            raise click.exceptions.Exit(0) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mtlgit", prog_name="mtlgit")
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if mtlgit was started in this directory.",
)
@click.pass_context
def cli(ctx: click.Context, directory: Path | None) -> None:
    """mtlgit: a git-native memory store for coding agents.

    Memories are Markdown files in your repository's memories/ folder; mtlgit adds, lints and recalls
    them offline.

    \b
    Example:
        mtlgit init --starter
        mtlgit recall "the date parser raises ValueError on an empty string"
        mtlgit add --title "Run the failing test first" \\
            --description "Before a fix, reproduce the bug with a test." \\
            --content "Write the smallest test that fails, see it fail, then fix."
        mtlgit list

    Exit codes: 0 done, 1 an error, or a batch (add --items, import) with a rejected item, 2 a usage error,
    3 an internal error (a bug), 130 Ctrl-C.
    """
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise click.UsageError(f"cannot change to {directory}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 user error, 2 usage, 3 internal error, 130 Ctrl-C."""
    try:
        # Outside standalone mode click returns the code of a ctx.exit() instead of raising it.
        code = cli.main(args=argv, prog_name="mtlgit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except (KeyboardInterrupt, BrokenPipeError, Exception):  # noqa: BLE001 - the last line of defence
        return handle_exception()
    return code if isinstance(code, int) else 0


def handle_exception() -> int:
    """The exit code for the exception being handled: Ctrl-C 130, a closed pipe 0, anything else 3 with a log."""
    error = sys.exc_info()[1]
    if isinstance(error, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        return 130
    if isinstance(error, BrokenPipeError):
        sys.stderr.close()
        return 0
    fault = disk_fault(error, _where())
    if fault is not None:
        # Not a bug, and on a full disk there is no room for a crash log anyway.
        click.echo(f"Error: {fault}", err=True)
        return 1
    log = _write_crash_log()
    click.echo(f"mtlgit: internal error (a bug in mtlgit, not in your input); details in {log}", err=True)
    return 3


def _where() -> str:
    """The place a write without a file name went to: mtlgit's folder of the repository, or the current one."""
    try:
        from mtlgit.repo import find_repo

        return f"a file below {find_repo().state_dir}"
    except Exception:  # noqa: BLE001 - no repository
        return f"a file below {os.getcwd()}"


def _write_crash_log() -> str:
    text = traceback.format_exc()
    try:
        from mtlgit.repo import find_repo

        folder = find_repo().state_dir
    except Exception:  # noqa: BLE001 - no repository: fall back to the temp folder
        import tempfile

        folder = Path(tempfile.gettempdir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "crash.log"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
        return str(path)
    except OSError:
        sys.stderr.write(text)
        return "the traceback above"


def open_pool() -> Any:
    """The pool of the current directory's repository (imported here to keep ``--help`` fast)."""
    from mtlgit.store import Pool

    return Pool.open()


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
