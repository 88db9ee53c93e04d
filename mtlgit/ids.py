"""ULIDs: 48 bits of milliseconds then 80 random bits, in Crockford base32.

Unique without coordination and sortable by creation time. Written here rather than imported because
the generator is a dozen lines and the python-ulid package costs ~60 ms to import on every ``mtlgit add``.
"""

from __future__ import annotations

import os
import time

from mtlgit.rules import CROCKFORD

# hashlib is imported by blob_id alone: recording a recall's receipt needs a ULID, not OpenSSL.


def new_ulid(now_ms: int | None = None) -> str:
    """Return a new ULID string (26 upper-case characters)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid_time_ms(ulid: str) -> int:
    """The creation time encoded in a ULID, in milliseconds since the epoch."""
    value = 0
    for ch in ulid[:10].upper():
        value = value * 32 + CROCKFORD.index(ch)
    return value


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (``git hash-object``): the key of everything cached about a file."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's own object id
