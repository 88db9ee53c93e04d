"""Editing a memory in ``$EDITOR``: drafts live under ``.git/mtlgit/drafts/`` so no text is ever lost."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mtlgit.errors import MtlgitError

HINT = "<!-- mtlgit: write the memory above this line; this comment is dropped. Save an empty file to cancel. -->"


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def draft_path(state_dir: Path, name: str) -> Path:
    folder = state_dir / "drafts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def run_editor(path: Path) -> str:
    """Open ``path`` in ``$VISUAL``/``$EDITOR`` and return what was saved."""
    try:
        click.edit(filename=str(path))
    except click.ClickException as exc:
        raise MtlgitError(f"{exc.message}: set $EDITOR (your draft is kept at {path})") from None
    return path.read_text(encoding="utf-8").replace(HINT + "\n", "").replace(HINT, "")
