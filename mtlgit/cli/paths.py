"""Paths as the CLI prints them for people and shells: relative to the current directory, as ``git status``
does, so that a path printed in a subfolder opens from there. JSON keeps the repository's paths."""

from __future__ import annotations

import os
from pathlib import Path


def from_here(root: Path, path: str) -> str:
    """``path``, relative to the repository's ``root`` (or absolute), as a path from the current directory."""
    return path if os.path.isabs(path) else os.path.relpath(root / path, os.getcwd())
