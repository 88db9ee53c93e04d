"""Finding the git repository.

Discovery is done in Python (walking up to ``.git``) because recall runs it on every call and a ``git``
subprocess costs ~5 ms; git itself is asked only when the environment overrides the layout (``GIT_DIR``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mtlgit.errors import MtlgitError, NotARepositoryError

# mtlgit.git, and subprocess with it (a tenth of a numpy import, measured), is imported by the two functions
# that run git: recall finds the repository without running git.


@dataclass(frozen=True)
class Repo:
    """A git work tree: its root, its own git dir, and the git dir it shares with other worktrees."""

    root: Path
    git_dir: Path
    common_dir: Path

    @property
    def state_dir(self) -> Path:
        """Derived data shared by every worktree: the vector cache, pool mirrors, logs."""
        return self.common_dir / "mtlgit"

    @property
    def worktree_state_dir(self) -> Path:
        """Derived data of this worktree alone: its index snapshot."""
        return self.git_dir / "mtlgit"

    def git(self, *args: str, check: bool = True, input: bytes | None = None) -> str:
        """The output of ``git *args`` run in the work tree, as text (see :func:`mtlgit.git.text`).

        :raises mtlgit.git.GitError: when git fails and ``check`` is set.
        """
        from mtlgit import git

        return git.text(self.root, *args, check=check, input=input)


def find_repo(start: Path | None = None) -> Repo:
    """The repository containing ``start`` (default: the current directory).

    :raises NotARepositoryError: when there is none.
    """
    here = (start or Path.cwd()).resolve()
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return _ask_git(here)
    for folder in (here, *here.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return Repo(folder, dot_git, _common_dir(dot_git))
        if dot_git.is_file():
            git_dir = _read_gitfile(dot_git)
            if git_dir is not None:
                return Repo(folder, git_dir, _common_dir(git_dir))
    raise NotARepositoryError(
        f"{here} is not inside a git repository: run `git init` (then `mtlgit init`) or cd into your project"
    )


def _read_gitfile(path: Path) -> Path | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    return (path.parent / target).resolve() if not target.is_absolute() else target


def _common_dir(git_dir: Path) -> Path:
    commondir = git_dir / "commondir"
    if commondir.is_file():
        target = Path(commondir.read_text(encoding="utf-8").strip())
        return (git_dir / target).resolve() if not target.is_absolute() else target
    return git_dir


def _ask_git(here: Path) -> Repo:
    from mtlgit import git

    try:
        out = git.text(here, "rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir")
    except MtlgitError:
        raise NotARepositoryError(
            f"{here} is not inside a git work tree (GIT_DIR={os.environ.get('GIT_DIR')})"
        ) from None
    root, git_dir, common = out.splitlines()[:3]
    common_path = Path(common)
    if not common_path.is_absolute():
        common_path = (here / common_path).resolve()
    return Repo(Path(root), Path(git_dir), common_path)
