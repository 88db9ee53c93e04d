"""Files that ship with mtlgit: the starter pool and the hook templates.

In a wheel they sit inside the package (``mtlgit/starter``, ``mtlgit/hooks``); in a source checkout they are
the repository's own ``memories/`` and ``hooks/`` folders.
"""

from __future__ import annotations

from pathlib import Path

from mtlgit.errors import MtlgitError

_PACKAGE = Path(__file__).resolve().parent


def _find(installed: str, source: str) -> Path:
    for candidate in (_PACKAGE / installed, _PACKAGE.parent / source):
        if candidate.is_dir():
            return candidate
    raise MtlgitError(f"mtlgit's {source}/ folder is missing from this installation: reinstall mtlgit")


def starter_dir() -> Path:
    return _find("starter", "memories")


def hooks_dir() -> Path:
    return _find("hooks", "hooks")
