"""The one error family of mtlgit: every message says what went wrong, where, and what to do next."""

from __future__ import annotations

from dataclasses import dataclass


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
