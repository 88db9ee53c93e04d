"""Snapshots of git trees: a revision of this repository, or a pool's mirror at its fetched ref.

Both are one source (:class:`GitTree`): the memory files below a folder of a commit, read from git objects
with no checkout, built once per tree (the folder's name says which) and never refreshed. The working tree is
the other source (worktree.py), refreshed in place by file stats.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mtlgit.embed import load_model
from mtlgit.errors import MtlgitError
from mtlgit.index.build import Builder, RecordHook
from mtlgit.index.common import note
from mtlgit.index.manifest import Manifest
from mtlgit.index.segment import FileInput
from mtlgit.index.snapshot import Snapshot, open_current

if TYPE_CHECKING:
    from mtlgit.embed import StaticModel
    from mtlgit.repo import Repo


@dataclass
class GitTree:
    """The memory files below ``folder`` at ``commit`` of ``objects`` (this repository or a pool's mirror)."""

    objects: Repo
    commit: str
    folder: str

    def tree(self) -> str:
        from mtlgit import gitobjects

        return gitobjects.tree_id(self.objects, self.commit, self.folder)

    def files(self) -> list[FileInput]:
        """Every memory file with its size and blob id; a file too large to read is reported by its size."""
        from mtlgit import gitobjects
        from mtlgit.memory import MAX_FILE_BYTES, too_large

        files = []
        for rel, blob, size in gitobjects.memory_entries(self.objects, self.commit, self.folder):
            file = FileInput(rel, [size, 0, 0], blob)
            if size > MAX_FILE_BYTES:
                file.problems = [too_large(rel, size).to_json()]
            files.append(file)
        return files


def build_tree(
    repo: Repo,
    model: StaticModel,
    source: GitTree,
    index_dir: Path,
    manifest: Manifest,
    lock_path: Path,
    what: str,
    record_hook: RecordHook | None = None,
    progress: bool = False,
    vectors_key: str | None = None,
) -> Snapshot:
    """The snapshot of ``source`` in ``index_dir``: the one there, or built now under ``lock_path``.

    :param what: how a note names it when it cannot be saved ("the index of HEAD~1").
    :param vectors_key: where the cache keeps vectors of records ``record_hook`` changed (:class:`Builder`).
    """
    from mtlgit.index.writer import commit
    from mtlgit.lock import LockUnwritable, file_lock

    def build(save: bool) -> Snapshot:
        from mtlgit import gitobjects

        files = source.files()

        def read(indexes: list[int]) -> dict[int, bytes]:
            contents = gitobjects.read_blobs(source.objects, [files[i].blob for i in indexes])
            return {i: contents[files[i].blob] for i in indexes}

        data = Builder(repo, model, progress, vectors_key).segment(files, read, record_hook) if files else None
        full = replace(manifest, model_key=model.key, model_files=model.files_stat(), dim=model.dim)
        return commit(index_dir, full, None, {}, data, save=save)

    try:
        with file_lock(lock_path, timeout=300):
            snapshot = open_current(index_dir)
            if snapshot is not None:
                return snapshot
            return build(save=True)
    except LockUnwritable as exc:
        note(f"could not save {what} ({exc.strerror}): built in memory for this run only", if_done=True)
        return build(save=False)


def rev_snapshot(repo: Repo, rev: str, progress: bool = False) -> Snapshot:
    """The pool exactly as it was at ``rev``, read from git objects (no checkout), cached by tree id.

    The memories folder and model are those of the configuration at ``rev`` (or the defaults).
    :raises MtlgitError: when ``rev`` is not a commit of the repository.
    """
    from mtlgit import gitobjects
    from mtlgit.config import CONFIG_NAME, Config, parse_config
    from mtlgit.frontmatter import FrontMatterError, load_yaml

    commit = gitobjects.resolve_commit(repo, rev)
    config_text = gitobjects.read_path(repo, commit, CONFIG_NAME)
    config = Config()
    if config_text is not None:
        try:
            config = parse_config(load_yaml(config_text, 1), config_text, repo.root, repo.root / CONFIG_NAME)
        except FrontMatterError as exc:
            raise MtlgitError(f"{CONFIG_NAME} at {rev}:{exc.line}: {exc.message}") from None
    model = load_model(config.model, repo.root, repo.state_dir)
    source = GitTree(repo, commit, config.memories)
    # The configuration at that commit is part of the key: its recall defaults are in the manifest.
    settings = hashlib.sha1((config_text or "").encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    index_dir = repo.state_dir / "revs" / f"{source.tree()}-{model.key}-{settings}"
    snapshot = open_current(index_dir)
    if snapshot is not None:
        return snapshot
    manifest = Manifest.from_config(config, "rev", rev=rev, commit=commit)
    lock = repo.state_dir / "revs.lock"
    return build_tree(repo, model, source, index_dir, manifest, lock, f"the index of {rev}", progress=progress)
