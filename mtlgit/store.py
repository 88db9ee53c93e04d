"""The pool of one repository: finding, loading, adding and changing memory files.

Loading never fails as a whole: every file that cannot be used is reported as a :class:`Problem` and the
rest load. Writes are atomic (a temporary file, then a hard link or rename), a new memory can never take
an existing file, and a rewrite is refused if the file changed since it was read.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlgit import frontmatter
from mtlgit.config import Config, load_config
from mtlgit.errors import InvalidMemoryError, MemoryNotFoundError, MtlgitError, Problem, disk_fault
from mtlgit.ids import blob_id, new_ulid
from mtlgit.lock import file_lock
from mtlgit.memory import (
    Memory,
    duplicate_problem,
    memory_from_record,
    new_meta,
    parse_bytes,
    read_file,
    relpath,
    slugify,
)
from mtlgit.repo import Repo, find_repo
from mtlgit.rules import FORMATS, first_of_each_id, scan_memories
from mtlgit.supersede import check_supersede


@dataclass
class LoadResult:
    memories: list[Memory] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def iter_memory_files(folder: Path, root: Path) -> Iterator[Path]:
    """The memory files below ``folder`` (see :func:`mtlgit.rules.scan_memories`)."""
    for rel in scan_memories(folder, root)[0]:
        yield root / rel


class Pool:
    """The memories of one repository, as files in its memories folder.

    >>> pool = Pool.open()                                   # doctest: +SKIP
    >>> pool.add(title="...", description="...", content="...")  # doctest: +SKIP
    """

    def __init__(self, repo: Repo, config: Config) -> None:
        self.repo = repo
        self.config = config
        self._loaded: LoadResult | None = None
        self._indexed: LoadResult | None = None

    @classmethod
    def open(cls, path: str | Path | None = None) -> Pool:
        """Open the pool of the repository containing ``path`` (default: the current directory).

        :raises NotARepositoryError: outside a git repository.
        :raises MtlgitError: when ``.mtlgit.yaml`` is invalid.
        """
        repo = find_repo(Path(path) if path is not None else None)
        return cls(repo, load_config(repo.root))

    @property
    def root(self) -> Path:
        return self.repo.root

    @property
    def memories_dir(self) -> Path:
        return self.repo.root / self.config.memories

    @property
    def tmp_dir(self) -> Path:
        """Where writes stage their temporary files: outside the working tree, so never committed."""
        return self.repo.state_dir / "tmp"

    def rel(self, path: Path) -> str:
        return relpath(path, self.repo.root)

    def files(self) -> list[Path]:
        return list(iter_memory_files(self.memories_dir, self.repo.root))

    # --- reading ---------------------------------------------------------------------------------------

    def load(self, refresh: bool = False) -> LoadResult:
        """Read every memory file; cached until ``refresh`` or a write through this object."""
        if self._loaded is None or refresh:
            self._loaded = self.load_paths(self.files())
        return self._loaded

    def load_indexed(self) -> LoadResult:
        """The pool as the index holds it, for reading: the memories and errors of :meth:`load` (not the
        lint-only warnings) from the fresh index snapshot instead of parsing every file (at 10k memories a few
        hundred milliseconds instead of seconds). The memories carry no ``meta``: a write goes through
        :meth:`load`. Falls back to :meth:`load` when the index cannot be built (e.g. a broken model setting, a
        full disk).
        """
        if self._indexed is not None:
            return self._indexed
        from mtlgit.index import WorktreeIndex

        try:
            snapshot = WorktreeIndex(self.repo).fresh()
        except (MtlgitError, OSError):
            return self.load()
        except Exception as exc:
            # A full or read-only disk that only SQLite noticed: reading the files needs no room.
            if disk_fault(exc, "") is None:
                raise
            return self.load()
        rows = range(snapshot.n_docs)
        blobs = snapshot.doc_blobs().tolist()
        result = LoadResult()
        for row, record, path in zip(rows, snapshot.records(rows), snapshot.doc_paths(rows), strict=True):
            result.memories.append(memory_from_record(record, path, blobs[row].decode()))
        result.problems = [Problem(**p) for p in snapshot.problems() if p.get("severity") == "error"]
        self._indexed = result
        return result

    def load_paths(self, paths: Iterable[Path]) -> LoadResult:
        result = LoadResult()
        for path in paths:
            memory, problems = read_file(path, self.rel(path), self.repo.root)
            result.problems.extend(problems)
            if memory is not None:
                result.memories.append(memory)
        result.memories, duplicates = dedupe_ids(result.memories)
        result.problems.extend(duplicates)
        return result

    @property
    def memories(self) -> list[Memory]:
        return self.load().memories

    @property
    def problems(self) -> list[Problem]:
        return self.load().problems

    def get(self, ref: str, indexed: bool = False) -> Memory:
        """The memory whose id is ``ref``, starts with ``ref`` (case-insensitive), or whose file is ``ref``.

        :param indexed: look it up through the index (:meth:`load_indexed`), for reading only.
        :raises MemoryNotFoundError: when nothing or more than one memory matches.
        """
        memories = self.load_indexed().memories if indexed else self.memories
        try:
            return resolve(memories, ref, self.repo.root)
        except MemoryNotFoundError as exc:
            raise MemoryNotFoundError(self._in_conflict(ref, indexed) or str(exc)) from None

    def _in_conflict(self, ref: str, indexed: bool) -> str:
        """Why a memory ``ref`` names is not found when a file holding it has merge conflict markers."""
        problems = self.load_indexed().problems if indexed else self.problems
        for path in dict.fromkeys(p.path for p in problems if p.code == "conflict"):
            try:
                text = (self.repo.root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if ref.strip() and ref.strip().upper() in text.upper():
                return (
                    f"{path} holds '{ref.strip()}' but has unresolved merge conflict markers: keep one version "
                    "and delete the marker lines (then `git add` it)"
                )
        return ""

    def select(
        self,
        formats: Iterable[str] = (),
        domains: Iterable[str] = (),
        exclude_domains: Iterable[str] = (),
        tags: Iterable[str] = (),
        scopes: Iterable[str] = (),
        statuses: Iterable[str] = ("active",),
        indexed: bool = False,
    ) -> list[Memory]:
        """The memories that pass every filter given (an empty filter passes everything); ``indexed``: read
        through the index (:meth:`load_indexed`)."""
        memories = self.load_indexed().memories if indexed else self.memories
        return select(memories, formats, domains, exclude_domains, tags, scopes, statuses)

    # --- writing ---------------------------------------------------------------------------------------

    def check_set_up(self) -> None:
        """Refuse a new memory where ``mtlgit init`` never ran (no ``.mtlgit.yaml``, no memories folder) rather
        than make a folder nobody asked for. A configuration without its folder is a clone (git keeps no empty
        folder): the first memory makes it.

        :raises MtlgitError: naming the folder and the fix.
        """
        if self.config.path is None and not self.memories_dir.is_dir():
            raise MtlgitError(
                f"mtlgit is not set up in {self.root} (no .mtlgit.yaml, no {self.config.memories}/ folder): run "
                "`mtlgit init` first, then add again"
            )

    def add(
        self,
        title: str,
        content: str,
        format: str = "insight",
        description: str = "",
        goal: str = "",
        scope: str | None = None,
        domains: Iterable[str] = (),
        tags: Iterable[str] = (),
        outcome: str = "unknown",
        source: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Memory:
        """Write a new memory file and return it.

        The file is named ``<memories>/<format>/<slug>-<id suffix>.md``; it is validated exactly as a
        file read from disk would be, and nothing is written when it has errors.

        :raises InvalidMemoryError: listing the problems when the memory does not validate.
        """
        if format not in FORMATS:
            raise InvalidMemoryError(f"'format' must be one of {', '.join(FORMATS)}")
        folder = self.memories_dir / format
        for _attempt in range(8):
            memory_id = new_ulid()
            meta = new_meta(
                memory_id,
                title,
                format,
                description=description,
                goal=goal,
                scope=scope,
                domains=[d.strip() for d in domains if d.strip()],
                tags=[t.strip() for t in tags if t.strip()],
                outcome=outcome,
                source=source,
                extra=extra,
            )
            text = frontmatter.render(meta, content)
            path = folder / f"{slugify(title)}-{memory_id[-8:].lower()}.md"
            memory = self._validated(text, path)
            folder.mkdir(parents=True, exist_ok=True)
            if write_new_file(path, text.encode("utf-8"), self.tmp_dir):
                self._loaded = self._indexed = None
                return memory
        raise MtlgitError(f"could not find a free file name in {self.rel(folder)}")  # pragma: no cover

    def _validated(self, text: str, path: Path) -> Memory:
        memory, problems = parse_bytes(text.encode("utf-8"), self.rel(path))
        errors = [p for p in problems if p.is_error]
        if memory is None or errors:
            detail = "; ".join(p.message for p in errors) or "invalid memory"
            raise InvalidMemoryError(f"memory not written: {detail}", problems)
        return memory

    def update(self, ref: str | Memory, updates: dict[str, Any]) -> Memory:
        """Set front-matter fields of a memory, rewriting only their lines."""
        memory = ref if isinstance(ref, Memory) else self.get(ref)
        path = self.repo.root / memory.path
        with file_lock(self.repo.state_dir / "write.lock"):
            current = _read_if_unchanged(path, memory)
            try:
                text = frontmatter.set_fields(current.decode("utf-8"), updates)
            except frontmatter.FrontMatterError as exc:
                raise MtlgitError(f"{memory.path}: {exc.message}") from None
            updated = self._validated(text, path)
            replace_file(path, text.encode("utf-8"), self.tmp_dir)
        self._loaded = self._indexed = None
        return updated

    def replace_text(self, memory: Memory, text: str) -> Memory:
        """Replace a memory file's whole text (after ``edit``), refusing text that does not validate."""
        path = self.repo.root / memory.path
        with file_lock(self.repo.state_dir / "write.lock"):
            _read_if_unchanged(path, memory)
            updated = self._validated(text, path)
            replace_file(path, text.encode("utf-8"), self.tmp_dir)
        self._loaded = self._indexed = None
        return updated

    def retire(self, ref: str, superseded_by: str | None = None) -> Memory:
        """Mark a memory retired (or superseded by another); the file stays, recall skips it."""
        memory = self.get(ref)
        if superseded_by is not None:
            successor = self.get(superseded_by)
            check_supersede(self.memories, memory, successor)
            return self.update(memory, {"status": "superseded", "superseded_by": successor.id})
        return self.update(memory, {"status": "retired"})


def _read_if_unchanged(path: Path, memory: Memory) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MtlgitError(f"{memory.path}: cannot read it: {exc.strerror}") from None
    if memory.blob and blob_id(data) != memory.blob:
        raise MtlgitError(f"{memory.path} changed on disk since it was read: run the command again")
    return data


def dedupe_ids(memories: list[Memory]) -> tuple[list[Memory], list[Problem]]:
    """Keep the first memory of each id (by path order); report the others."""
    kept, duplicates = first_of_each_id([(m.id, m.path) for m in memories])
    problems = [duplicate_problem(memories[i].path, memories[i].id, first) for i, first in duplicates]
    return [memories[i] for i in kept], problems


def resolve(memories: list[Memory], ref: str, root: Path | None = None) -> Memory:
    ref = ref.strip()
    if not ref:
        raise MemoryNotFoundError("give a memory id, an id prefix, or a file path")
    upper = ref.upper()
    exact = [m for m in memories if m.id.upper() == upper]
    if exact:
        return exact[0]
    by_prefix = [m for m in memories if m.id.upper().startswith(upper)]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        listing = ", ".join(f"{m.id} ({m.title[:40]})" for m in by_prefix[:5])
        raise MemoryNotFoundError(f"'{ref}' matches {len(by_prefix)} memories: {listing}; give more of the id")
    if root is not None:
        candidate = Path(ref)
        wanted = (candidate if candidate.is_absolute() else Path.cwd() / candidate).resolve()
        for memory in memories:
            if (root / memory.path).resolve() == wanted:
                return memory
    raise MemoryNotFoundError(f"no memory has the id or id prefix '{ref}': `mtlgit list` shows the ids")


def _folded(values: Iterable[str]) -> set[str]:
    return {v.strip().lower() for v in values if v.strip()}


def select(
    memories: Iterable[Memory],
    formats: Iterable[str] = (),
    domains: Iterable[str] = (),
    exclude_domains: Iterable[str] = (),
    tags: Iterable[str] = (),
    scopes: Iterable[str] = (),
    statuses: Iterable[str] = ("active",),
) -> list[Memory]:
    want_formats, want_domains, drop_domains = _folded(formats), _folded(domains), _folded(exclude_domains)
    want_tags, want_scopes, want_statuses = _folded(tags), _folded(scopes), _folded(statuses)
    out = []
    for m in memories:
        mine = {d.lower() for d in m.domains}
        if want_formats and m.format not in want_formats:
            continue
        if want_domains and not mine & want_domains:
            continue
        if drop_domains and mine & drop_domains:
            continue
        if want_tags and not {t.lower() for t in m.tags} & want_tags:
            continue
        if want_scopes and m.scope not in want_scopes:
            continue
        if want_statuses and m.status not in want_statuses:
            continue
        out.append(m)
    return out


TEMP_RE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")
ORPHAN_AGE = 3600.0  # seconds; a write takes milliseconds, so an older temporary file is an orphan whoever wrote it


def write_new_file(path: Path, data: bytes, tmp_dir: Path | None = None) -> bool:
    """Create ``path`` with ``data`` atomically; False (and nothing written) when it already exists.

    The data goes to a temporary file first, which is then hard-linked to the final name: the link fails if
    the name is taken, so two writers can never share a file, and a reader never sees half of one. The
    temporary file lives in ``tmp_dir`` (``.git/mtlgit/tmp``) when given, so a writer killed half-way leaves
    nothing in the memories folder for ``git add`` to pick up; only across filesystems does it go next to
    ``path``, hidden.
    """
    tmp = _temp_path(path, tmp_dir)
    try:
        _write_synced(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno == errno.EXDEV and tmp_dir is not None:
                tmp.unlink(missing_ok=True)
                return write_new_file(path, data)
            # Filesystems without hard links: exclusive create, then write.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def replace_file(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its permission bits (temporary file as in
    :func:`write_new_file`)."""
    tmp = _temp_path(path, tmp_dir)
    try:
        _write_synced(tmp, data)
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except OSError:
            pass
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV or tmp_dir is None:
                raise
            replace_file(path, data)
    finally:
        tmp.unlink(missing_ok=True)


_swept: set[Path] = set()


def _temp_path(path: Path, tmp_dir: Path | None) -> Path:
    folder = path.parent
    if tmp_dir is not None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        folder = tmp_dir
    # Once per folder and process: an import of a thousand memories lists each folder once, not a thousand times.
    for swept in {folder, path.parent} - _swept:
        remove_orphans(swept)
        _swept.add(swept)
    return folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"


def remove_orphans(folder: Path) -> list[str]:
    """Delete the temporary files in ``folder`` left by writers that died before renaming them (a process
    that no longer runs, or a file older than an hour); returns their names. Only names of the form mtlgit
    gives its temporary files are touched."""
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_RE.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            orphan = not _alive(int(match.group(1))) or now - entry.stat().st_mtime > ORPHAN_AGE
            if orphan:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid at all: leave the file to the age rule
    return True


def _write_synced(path: Path, data: bytes) -> None:
    try:
        with open(path, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if exc.filename is not None:
            raise
        # A write to an open file fails without a file name; the user needs to know where.
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
