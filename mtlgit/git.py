"""Every git command mtlgit runs goes through :func:`run`: bytes in, bytes out, and a failure is one
:class:`GitError` line naming the command and git's own words, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mtlgit.errors import MtlgitError


class GitError(MtlgitError):
    """A git command that could not run or failed; ``stderr`` keeps all of git's words for callers that must
    tell one failure from another (a rejected push, a missing remote ref)."""

    def __init__(self, message: str, stderr: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode


@dataclass(frozen=True)
class Result:
    """What one git command printed, and how it ended."""

    command: str  # "git cat-file": the words an error names
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def text(self) -> str:
        """The standard output as text; bytes that are not UTF-8 (a path git prints as is) survive a round trip."""
        return self.stdout.decode("utf-8", "surrogateescape")

    @property
    def error(self) -> str:
        """git's own line saying what went wrong: the ``fatal:`` line that stopped it (the ``error:`` lines
        before it are the details), else its first ``error:`` line, else its first line."""
        lines = [line.strip() for line in self.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        for prefix in ("fatal:", "error:", ""):
            told = next((line for line in lines if line.startswith(prefix)), None)
            if told is not None:
                return told
        return f"exit code {self.returncode}"

    def check(self) -> Result:
        """This result.

        :raises GitError: when the command failed.
        """
        if not self.ok:
            raise GitError(
                f"{self.command} failed: {self.error}",
                self.stderr.decode("utf-8", "replace"),
                self.returncode,
            )
        return self


def run(
    cwd: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Result:
    """Run ``git *args`` in ``cwd``.

    :param env: variables set on top of this process's environment.
    :raises GitError: when git is missing, cannot start in ``cwd``, runs longer than ``timeout`` seconds, or
        (with ``check``) fails.
    """
    command = f"git {_subcommand(args)}"
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            check=False,
            env={**os.environ, **env} if env is not None else None,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        if exc.filename != "git":
            raise GitError(f"{command} could not start in {cwd}: {exc.strerror}") from None
        raise GitError("git is not installed or not on PATH: install git, then try again") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{command} took more than {timeout:g} s and was stopped") from None
    except OSError as exc:
        raise GitError(f"{command} could not start in {cwd}: {exc.strerror}") from None
    result = Result(command, proc.returncode, proc.stdout, proc.stderr)
    return result.check() if check else result


def text(cwd: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    """The standard output of ``git *args`` as text (see :attr:`Result.text`).

    :raises GitError: as :func:`run`.
    """
    return run(cwd, *args, input=input, check=check).text


def remote_refs(cwd: Path) -> dict[str, str]:
    """Every remote-tracking ref of the repository at ``cwd`` (``refs/remotes/origin/main``), with the ref it
    points to when it is symbolic (``refs/remotes/origin/HEAD``: ``refs/remotes/origin/main``), else ''. Asked
    of git, so that any ref storage (loose files, packed-refs, reftable) answers.

    :raises GitError: as :func:`run`.
    """
    out = run(cwd, "for-each-ref", "--format=%(refname)%00%(symref)", "refs/remotes/").stdout
    refs = {}
    for line in out.split(b"\n"):
        if line:
            name, _, target = line.partition(b"\0")
            refs[name.decode("utf-8", "surrogateescape")] = target.decode("utf-8", "surrogateescape")
    return refs


def _subcommand(args: tuple[str, ...]) -> str:
    """The git command's name, past the options given to git itself (``-c name=value``, ``-C dir``)."""
    position = 0
    while position < len(args) and args[position].startswith("-"):
        position += 2 if args[position] in ("-c", "-C") else 1
    return args[position] if position < len(args) else ""
