"""An exclusive lock on a file under ``.git/mtlgit/``, held by one process at a time (``flock``)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mtlgit.errors import MtlgitError


class LockUnwritable(OSError):
    """The lock file cannot be created or opened: the folder is read-only, full, or not permitted."""


@contextmanager
def file_lock(path: Path, timeout: float = 60.0, shared: bool = False) -> Iterator[bool]:
    """Hold a lock on ``path`` (created if missing) for the duration of the block; the block gets whether
    the lock had to be waited for (another process held it, and may have done the work meanwhile).

    The kernel drops a ``flock`` when its holder dies, so a crashed process never leaves a stale lock.

    :raises MtlgitError: when the lock is not free within ``timeout`` seconds.
    :raises LockUnwritable: when the lock file cannot be made (a read-only checkout, a full disk).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockUnwritable(exc.errno, exc.strerror, str(path)) from None
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        waited = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MtlgitError(
                        f"{path} is locked by another mtlgit process for more than {timeout:.0f} s: "
                        "wait for it to finish, or check for a hung process"
                    ) from None
                waited = True
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield waited
    finally:
        os.close(fd)
