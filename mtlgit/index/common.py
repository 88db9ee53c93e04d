"""What every part of the index shares: its constants, its error, checksummed JSON and the user's notes.

Imports only the standard library: this module is on the recall path.
"""

from __future__ import annotations

import errno
import json
import os
import zlib
from pathlib import Path
from typing import Any

from mtlgit.rules import FORMATS, OUTCOMES, SCOPES, STATUSES

INDEX_VERSION = 8  # 7: segments with tombstones, BM25 statistics combined at query time; 8: vector head, moments
K1, B = 1.5, 0.75  # BM25 parameters (Lucene's defaults; bm25s uses the same)
RACY_NS = 3_000_000_000  # a file changed this close to its stat may change again unseen: hash it
ATTRS = (("format", FORMATS), ("status", STATUSES), ("scope", SCOPES), ("outcome", OUTCOMES))
PATHS = "files.paths"  # every file's path, NUL-separated: the one byte a path cannot hold
# Errors that mean "this disk cannot take the index now", not "the index is damaged".
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class IndexCorrupt(Exception):
    """A snapshot folder is missing a file, has a truncated or altered one, or was written by another version."""


_NOTED: set[str] = set()


def note(message: str, if_done: bool = False) -> None:
    """One line on stderr for the user, once per process (through logging, which prints the bare message when
    nothing is set up). ``if_done``: only worth saying if the command succeeds (see errors.DEFERRED_NOTES)."""
    if message in _NOTED:
        return
    _NOTED.add(message)
    from mtlgit import errors

    if if_done and errors.DEFERRED_NOTES is not None:
        errors.DEFERRED_NOTES.append(f"mtlgit: {message}")
        return
    import logging

    logging.getLogger("mtlgit").warning("mtlgit: %s", message)


def file_crc(path: Path | str) -> int:
    """CRC-32 of a file's bytes, read in blocks."""
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """A manifest as written: JSON ending with the CRC-32 of all the text before it, so a changed digit is
    noticed without serialising the manifest again on every read."""
    head = json.dumps({key: value for key, value in manifest.items() if key != "check"}).encode()[:-1]
    return head + b', "check": %d}' % zlib.crc32(head)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The checked manifest of a generation or segment folder.

    :raises IndexCorrupt: when it is unreadable, of another version or fails its checksum.
    """
    try:
        raw = (folder / "manifest.json").read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"{folder.name}/manifest.json is unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != INDEX_VERSION:
        version = manifest.get("version") if isinstance(manifest, dict) else None
        raise IndexCorrupt(f"{folder.name}: written by index version {version}")
    head, _sep, _tail = raw.rpartition(b', "check": ')
    if manifest.pop("check", None) != zlib.crc32(head):
        raise IndexCorrupt(f"{folder.name}/manifest.json fails its checksum")
    return manifest


def check_parts(folder: Path, parts: Any, full: bool) -> None:
    """Stat every file a manifest lists (size, and checksum when its times changed or ``full``).

    :raises IndexCorrupt: naming the first file that fails.
    """
    if not isinstance(parts, dict):
        raise IndexCorrupt(f"{folder.name}/manifest.json lists no files")
    base = str(folder)
    for name, (size, crc, mtime_ns, ctime_ns) in parts.items():
        path = os.path.join(base, name)  # not Path: every recall checks ~20 parts a segment
        try:
            st = os.stat(path)
        except OSError:
            raise IndexCorrupt(f"{folder.name}/{name} is missing") from None
        if st.st_size != size:
            raise IndexCorrupt(f"{folder.name}/{name} is {st.st_size} bytes, not {size}")
        if (full or st.st_mtime_ns != mtime_ns or st.st_ctime_ns != ctime_ns) and file_crc(path) != crc:
            raise IndexCorrupt(f"{folder.name}/{name} fails its checksum (it was altered)")


def path_key(rel: str) -> list[str]:
    """The order in which the working tree is walked (each folder's names sorted, a folder's files in place of
    its name): "a/b.md" before "a.md". The first file of an id in this order keeps it."""
    return rel.split("/")
