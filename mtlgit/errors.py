"""The one error family of mtlgit: every message says what went wrong, where, and what to do next."""

from __future__ import annotations

import errno
from dataclasses import dataclass

# Notes that matter only when the command succeeds ("the index could not be saved"): the command line sets
# this to a list, gathers them there and prints them at a successful exit, since a failed command's one-line
# error already says what went wrong. None (a library caller): they are logged at once.
DEFERRED_NOTES: list[str] | None = None


class MtlgitError(Exception):
    """A user-facing error: the CLI prints its message and exits 1, never a traceback."""


class NotARepositoryError(MtlgitError):
    """mtlgit was run outside a git repository or outside an initialised pool."""


class MemoryNotFoundError(MtlgitError):
    """No memory (or more than one) matches an id or id prefix."""


class InvalidMemoryError(MtlgitError):
    """A memory that is about to be written does not pass validation."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Problem:
    """One finding about one file, printed as ``path:line: severity: message``.

    ``line`` is 1-based; 0 means the finding is about the whole file.
    """

    path: str
    line: int
    severity: str  # "error" | "warning"
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message} [{self.code}]"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


# Faults of the place mtlgit writes to, not bugs: each is told in one line with the path and what to do.
_DISK_FAULTS = {
    errno.ENOSPC: "no space left on device: free some space and run the command again",
    errno.EDQUOT: "disk quota exceeded: free some space and run the command again",
    errno.EROFS: "read-only file system: this command needs to write there",
    errno.EACCES: "permission denied: check the owner and mode of the file and its folder",
    errno.EPERM: "operation not permitted: check the owner and mode of the file and its folder",
}
# SQLite reports the same faults in words, without an errno or a path.
_SQLITE_FAULTS = {
    "database or disk is full": errno.ENOSPC,
    "attempt to write a readonly database": errno.EROFS,
}


def disk_fault(error: BaseException | None, where: str) -> str | None:
    """The one-line message for a full, read-only or forbidden file system anywhere in ``error``'s chain
    (a failed write often fails again while closing, so the first cause may hide behind a second error);
    None when it is anything else. ``where`` names the place when the error does not (a write to an open
    file carries no file name)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        code = _errno_of(error)
        if code in _DISK_FAULTS:
            filename = getattr(error, "filename", None)
            return f"{filename if filename else where}: {_DISK_FAULTS[code]}"
        error = error.__cause__ or error.__context__
    return None


def _errno_of(error: BaseException) -> int | None:
    if isinstance(error, OSError):
        return error.errno
    if type(error).__name__ == "OperationalError" and type(error).__module__ == "sqlite3":
        message = str(error)
        return next((code for text, code in _SQLITE_FAULTS.items() if text in message), None)
    return None
