"""Reading memories straight from git objects: a commit's tree, its blobs, without a checkout."""

from __future__ import annotations

from mtlgit import git
from mtlgit.errors import MtlgitError
from mtlgit.repo import Repo
from mtlgit.rules import MEMORY_FILE_MODES, is_memory_path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def resolve_commit(repo: Repo, rev: str) -> str:
    """The commit id ``rev`` names.

    :raises MtlgitError: when it names no commit (a name starting with '-' is never taken as an option).
    """
    out = repo.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False).strip()
    if not out:
        raise MtlgitError(f"'{rev}' is not a commit of this repository: check the name (`git log --oneline`)")
    return out


def read_path(repo: Repo, commit: str, path: str) -> str | None:
    """The text of ``path`` at ``commit``, or None when it does not exist there."""
    result = git.run(repo.root, "cat-file", "blob", f"{commit}:{path}", check=False)
    return result.stdout.decode("utf-8", "replace") if result.ok else None


def tree_id(repo: Repo, commit: str, folder: str) -> str:
    out = repo.git("rev-parse", "--verify", "--quiet", f"{commit}:{folder}", check=False).strip()
    return out or EMPTY_TREE


def memory_entries(repo: Repo, commit: str, folder: str) -> list[tuple[str, str, int]]:
    """(path, blob id, size) of every memory file below ``folder`` at ``commit``, by the working tree's rules
    (:func:`mtlgit.rules.is_memory_path`); symlinks and submodules are not memories."""
    out = repo.git("ls-tree", "-r", "-z", "--long", commit, "--", folder)
    entries = []
    for item in out.split("\0"):
        if not item:
            continue
        info, path = item.split("\t", 1)
        mode, kind, blob, size = info.split()
        if kind == "blob" and mode in MEMORY_FILE_MODES and is_memory_path(path, folder):
            entries.append((path, blob, int(size)))
    return sorted(entries)


def read_blobs(repo: Repo, blobs: list[str]) -> dict[str, bytes]:
    """The contents of many blobs through one ``git cat-file --batch``."""
    unique = list(dict.fromkeys(blobs))
    if not unique:
        return {}
    out = git.run(repo.root, "cat-file", "--batch", input=("\n".join(unique) + "\n").encode()).stdout
    contents: dict[str, bytes] = {}
    position = 0
    for blob in unique:
        end = out.index(b"\n", position)
        header = out[position:end].split()
        position = end + 1
        if len(header) < 3 or header[1] == b"missing":
            raise MtlgitError(f"git object {blob} is missing: the repository may be shallow or damaged")
        size = int(header[2])
        contents[blob] = out[position : position + size]
        position += size + 1
    return contents


def blobs_at(repo: Repo, ref: str, folder: str) -> set[str]:
    """Blob ids of the memory files at ``ref``."""
    return {blob for _path, blob, _size in memory_entries(repo, resolve_commit(repo, ref), folder)}


def object_ids(repo: Repo, names: list[str]) -> list[str]:
    """The object id of each ``rev:path`` name ("" when it does not exist), through one cat-file.

    A path may hold a newline: such names go NUL-terminated (``-z``, git 2.38+), and the answers are read in
    order, since git echoes a missing name, newline and all.
    """
    if not names:
        return []
    nul = any("\n" in name for name in names)
    out = git.run(
        repo.root,
        "cat-file",
        *(["-z"] if nul else []),
        "--batch-check=%(objectname)",
        input=("\0" if nul else "\n").join(names).encode("utf-8", "surrogateescape") + (b"\0" if nul else b"\n"),
    ).text
    ids: list[str] = []
    position = 0
    for name in names:
        for answer in (" missing\n", " ambiguous\n"):
            if out.startswith(name + answer, position):
                ids.append("")
                position += len(name) + len(answer)
                break
        else:
            end = out.index("\n", position)
            ids.append(out[position:end])
            position = end + 1
    return ids
