"""Editing a memory in ``$EDITOR``: drafts live under ``.git/mtlgit/drafts/`` so no text is ever lost."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mtlgit.errors import MtlgitError

HINT = "<!-- mtlgit: write the memory above this line; this comment is dropped. Save an empty file to cancel. -->"


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def draft_path(state_dir: Path, name: str) -> Path:
    folder = state_dir / "drafts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def editor_command() -> tuple[str, str]:
    """The editor to run and where it came from: ``$VISUAL``, ``$EDITOR``, or the first of the usual ones found."""
    import shutil

    for variable in ("VISUAL", "EDITOR"):
        value = os.environ.get(variable, "").strip()
        if value:
            return value, f"${variable}"
    for name in ("sensible-editor", "nano", "vim", "vi"):
        if shutil.which(name):
            return name, "the default editor"
    raise MtlgitError("no editor found: set $EDITOR (e.g. `export EDITOR=nano`)")


def run_editor(path: Path) -> str:
    """Open ``path`` in the editor and return what was saved.

    :raises MtlgitError: when the editor cannot be started or exits with an error, naming its command and exit
        status; the draft stays at ``path``.
    """
    import shlex
    import subprocess

    command, origin = editor_command()
    kept = f"your draft is kept at {path}"
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise MtlgitError(f"cannot read the editor command {command!r} of {origin}: {exc}; {kept}") from None
    try:
        status = subprocess.call([*argv, str(path)])
    except OSError as exc:
        raise MtlgitError(f"cannot start the editor `{command}` ({origin}): {exc.strerror}; {kept}") from None
    if status != 0:
        raise MtlgitError(f"the editor `{command}` ({origin}) exited with status {status}; {kept}")
    return path.read_text(encoding="utf-8").replace(HINT + "\n", "").replace(HINT, "")
