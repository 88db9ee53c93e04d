"""Unified pools: other repositories' memories, fetched by git into bare mirrors and recalled with the local ones.

``pools:`` in ``.mtlgit.yaml`` names each pool (a git URL or a local path, a ref, the folder of its memories, a
domain label, and whether its memories passed review). ``mtlgit pool sync`` fetches each into a bare mirror
under ``.git/mtlgit/pools/`` with git itself, so any transport, credential helper, permission or branch
protection git knows applies; nothing is checked out, and the pool's repository is only read. Memories are read
from git objects at the pool's ref and share the blob-keyed cache, so a sync embeds only contents never seen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mtlgit import git
from mtlgit.config import CONFIG_NAME, Config, load_config

# Validating a configuration's pools is the configuration's work (mtlgit.index reads them too): the names
# stay importable from here for the commands.
from mtlgit.config import PoolSpec as PoolSpec
from mtlgit.config import check_spec as check_spec
from mtlgit.config import parse_pools as parse_pools
from mtlgit.errors import MemoryNotFoundError, MtlgitError
from mtlgit.frontmatter import dump_field, load_yaml
from mtlgit.repo import Repo

# Only transports that move data; "ext::" runs commands, "fd::" reads descriptors.
_SAFE_GIT = ("-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never")


# --- where a pool lives ----------------------------------------------------------------------------------


def pool_dir(repo: Repo, name: str) -> Path:
    return repo.state_dir / "pools" / name


def mirror_repo(repo: Repo, name: str) -> Repo:
    mirror = pool_dir(repo, name) / "mirror.git"
    return Repo(mirror, mirror, mirror)


def read_status(repo: Repo, name: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((pool_dir(repo, name) / "status.json").read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return {}


def _write_status(repo: Repo, name: str, status: dict[str, Any]) -> None:
    folder = pool_dir(repo, name)
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / "status.json", json.dumps(status))


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` through a synced temporary file, which never outlives a failed write (a
    full disk included): a crash at any point leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        # Name the file being replaced, not its temporary twin in the same folder (a write to an open file
        # names none at all).
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        tmp.unlink(missing_ok=True)


# --- sync ---------------------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str, timeout: float = 600) -> git.Result:
    return git.run(cwd, *_SAFE_GIT, *args, timeout=timeout, env=_git_env(), check=False)


def _git_env() -> dict[str, str]:
    # Never wait for a password prompt: a pool that needs credentials must have them in git's own helpers.
    return {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}


def sync(repo: Repo, spec: PoolSpec, root: Path) -> dict[str, Any]:
    """Fetch one pool into its bare mirror and index its memories; returns its new status.

    Errors are recorded in the status (and returned), not raised: one failing pool never stops the others.
    """
    from mtlgit.lock import file_lock

    folder = pool_dir(repo, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    ref = spec.ref or "HEAD"
    status: dict[str, Any] = {"name": spec.name, "url": spec.url, "ref": ref, "synced": time.time()}
    with file_lock(folder / "sync.lock", timeout=600):
        mirror = folder / "mirror.git"
        try:
            if not (mirror / "HEAD").exists():
                shutil.rmtree(mirror, ignore_errors=True)
                _git(folder, "init", "--quiet", "--bare", "mirror.git").check()
            url = spec.url
            local = (root / url) if not re.match(r"^[\w+.-]+://|^[^/]+@[^/]+:", url) else None
            if local is not None and local.exists():
                url = str(local.resolve())
            fetched = _git(mirror, "fetch", "--quiet", "--no-tags", "--", url, f"+{ref}:refs/mtlgit/pool")
            if not fetched.ok:
                which = spec.ref or "its default branch"
                raise MtlgitError(f"git fetch of {spec.url} ({which}) failed: {fetched.error}")
            snapshot = index_pool(repo, spec)
            unreadable = _unreadable(snapshot)
            status.update(
                ok=True,
                commit=snapshot.manifest["commit"],
                memories=snapshot.n_docs,
                index=snapshot.folder.parent.name,
                snapshot=snapshot.folder.name,
                unreadable=len(unreadable),
                unreadable_files=unreadable[:UNREADABLE_LISTED],
            )
            if unreadable:
                _note_unreadable(spec, unreadable)
        except MtlgitError as exc:
            status.update(ok=False, error=str(exc))
        previous = read_status(repo, spec.name)
        if not status.get("ok") and previous.get("snapshot"):
            # Keep answering from the last good sync.
            status.update(
                index=previous.get("index"),
                snapshot=previous["snapshot"],
                commit=previous.get("commit"),
                memories=previous.get("memories"),
            )
        # The status names the new index before the old one goes: a crash between the two leaves a folder
        # too many, never a status pointing at a deleted index.
        _write_status(repo, spec.name, status)
        _remove_stale_indexes(repo, spec.name, status)
    return status


UNREADABLE_LISTED = 20  # in the status: enough to start fixing, bounded whatever the pool holds


def _unreadable(snapshot: Any) -> list[dict[str, Any]]:
    """The first error of each file of a pool that is left out of it (not a memory, or an id used twice)."""
    first: dict[str, dict[str, Any]] = {}
    for problem in snapshot.problems():
        if problem.get("severity") == "error" and problem["path"] not in first:
            first[problem["path"]] = {key: problem.get(key) for key in ("path", "line", "code", "message")}
    return list(first.values())


def _note_unreadable(spec: PoolSpec, unreadable: list[dict[str, Any]]) -> None:
    """Say which of a pool's files were left out: they are fixed in the pool's own repository."""
    from mtlgit.index.common import note

    shown = "; ".join(f"{p['path']}:{p['line']}: {p['message']}" for p in unreadable[:3])
    more = f"; {len(unreadable) - 3} more in `mtlgit pool list --json`" if len(unreadable) > 3 else ""
    note(
        f"pool '{spec.name}': {len(unreadable)} file(s) could not be read and were left out: {shown}{more}. "
        f"The pool's repository ({spec.url}) has files mtlgit cannot read: run `mtlgit lint` there and commit the fix"
    )


def _remove_stale_indexes(repo: Repo, name: str, status: dict[str, Any]) -> None:
    live = _index_dir(repo, name, status)
    for stale in pool_dir(repo, name).glob("index-*"):
        if stale != live:
            shutil.rmtree(stale, ignore_errors=True)


def _index_dir(repo: Repo, name: str, status: dict[str, Any]) -> Path | None:
    """The index folder holding the snapshot a status names (statuses of older versions name only the
    snapshot, so its folder is looked for)."""
    from mtlgit.index import open_current

    snapshot = status.get("snapshot")
    if not snapshot:
        return None
    if status.get("index"):
        return pool_dir(repo, name) / str(status["index"])
    for index_dir in pool_dir(repo, name).glob("index-*"):
        current = open_current(index_dir)
        if current is not None and current.folder.name == snapshot:
            return index_dir
    return None


def index_pool(repo: Repo, spec: PoolSpec) -> Any:
    """The snapshot of a pool's memories at its fetched ref (built once per tree, model and domain label)."""
    from mtlgit import gitobjects
    from mtlgit.embed import load_model
    from mtlgit.index import GitTree, Manifest, build_tree

    mirror = mirror_repo(repo, spec.name)
    source = GitTree(mirror, gitobjects.resolve_commit(mirror, "refs/mtlgit/pool"), spec.folder)
    config = load_config(repo.root)
    model = load_model(config.model, repo.root, repo.state_dir)
    label = re.sub(r"[^a-z0-9-]", "-", spec.domain.lower())[:40]
    index_dir = pool_dir(repo, spec.name) / f"index-{source.tree()[:16]}-{model.key}-{label or 'none'}"

    def label_record(record: dict[str, Any]) -> dict[str, Any]:
        if spec.domain and spec.domain.lower() not in [d.lower() for d in record.get("domains", [])]:
            record = {**record, "domains": [*record.get("domains", []), spec.domain]}
        return record

    manifest = Manifest.from_config(
        config, "pool", pool=spec.name, trust=spec.trust, commit=source.commit, memories=spec.folder
    )
    lock = pool_dir(repo, spec.name) / "index.lock"
    what = f"the index of pool '{spec.name}'"
    vectors_key = f"{model.key}+domain:{spec.domain.lower()}" if spec.domain else None
    return build_tree(repo, model, source, index_dir, manifest, lock, what, label_record, vectors_key=vectors_key)


def pool_snapshot(repo: Repo, spec: PoolSpec) -> Any | None:
    """The snapshot of a synced pool, read without running git; None when it was never synced."""
    from mtlgit.index import open_current

    status = read_status(repo, spec.name)
    index_dir = _index_dir(repo, spec.name, status)
    snapshot = open_current(index_dir) if index_dir is not None else None
    if snapshot is None or snapshot.folder.name != status.get("snapshot"):
        return None
    return snapshot


# --- reading one pool memory ----------------------------------------------------------------------------


@dataclass
class PoolMemory:
    """A memory of a synced pool: its record (as recall returns it), its path in the pool's repository, and
    the commit it was read at."""

    pool: str
    path: str
    record: dict[str, Any]
    commit: str

    def to_json(self) -> dict[str, Any]:
        return {**self.record, "path": self.path, "pool": self.pool, "commit": self.commit}


def find_memories(repo: Repo, config: Config, ref: str, names: tuple[str, ...] = ()) -> list[PoolMemory]:
    """The memories of the synced pools (or of the named ones) whose id is ``ref`` or, when none is, starts
    with it (case-insensitive); when no id does, the memory whose file ``ref`` is: the readable copy
    ``recall --paths`` prints (absolute, or relative to the current folder or to the repository's root), or
    its path in the pool's own repository."""
    wanted = ref.strip().upper()
    found: list[PoolMemory] = []
    if not wanted:
        return found
    by_path: list[PoolMemory] = []
    copy_of = _copy_of(repo, ref.strip())
    for spec in parse_pools(config):
        snapshot = pool_snapshot(repo, spec) if not names or spec.name in names else None
        if snapshot is None:
            continue
        records = snapshot.records(range(snapshot.n_docs))
        ids = [str(r.get("id", "")).upper() for r in records]
        rows = [i for i, x in enumerate(ids) if x == wanted] or [i for i, x in enumerate(ids) if x.startswith(wanted)]
        commit = str(snapshot.manifest["commit"])
        for row, path in zip(rows, snapshot.doc_paths(rows), strict=True):
            found.append(PoolMemory(spec.name, path, records[row], commit))
        if not found:
            name, path = copy_of if copy_of is not None else (spec.name, PurePosixPath(ref.strip()).as_posix())
            if name == spec.name:
                paths = snapshot.doc_paths(range(snapshot.n_docs))
                by_path += [PoolMemory(name, p, records[i], commit) for i, p in enumerate(paths) if p == path]
    return found or by_path


def _copy_of(repo: Repo, ref: str) -> tuple[str, str] | None:
    """(pool, path in the pool) when ``ref`` is a file under a pool's ``files/`` copies (see
    :func:`local_copies`), given absolute or relative to the current folder or to the repository's root."""
    pools = (repo.state_dir / "pools").resolve()
    candidate = Path(ref)
    for where in [candidate] if candidate.is_absolute() else [Path.cwd() / candidate, repo.root / candidate]:
        try:
            inside = where.resolve().relative_to(pools).parts
        except (ValueError, OSError, RuntimeError):
            continue
        if len(inside) > 2 and inside[1] == "files":
            return inside[0], "/".join(inside[2:])
    return None


def pool_memories(repo: Repo, config: Config, names: tuple[str, ...] = ()) -> list[Any]:
    """The memories (``Memory`` objects, without ``meta``) of every synced pool, or of the named ones.

    :raises MtlgitError: for a name that is no configured pool.
    """
    from mtlgit.memory import memory_from_record

    specs = parse_pools(config)
    unknown = set(names) - {s.name for s in specs}
    if unknown:
        raise MtlgitError(f"no pool named {', '.join(sorted(unknown))}: `mtlgit pool list` shows them")
    out = []
    for spec in specs:
        snapshot = pool_snapshot(repo, spec) if not names or spec.name in names else None
        if snapshot is None:
            continue
        rows = range(snapshot.n_docs)
        for record, path in zip(snapshot.records(rows), snapshot.doc_paths(rows), strict=True):
            out.append(memory_from_record(record, path, pool=spec.name))
    return out


def get_memory(repo: Repo, config: Config, ref: str, names: tuple[str, ...] = ()) -> PoolMemory:
    """The one pool memory ``ref`` names (see :func:`find_memories`).

    :raises MemoryNotFoundError: when no pool memory, or more than one, has it.
    """
    found = find_memories(repo, config, ref, names)
    if len(found) == 1:
        return found[0]
    if not found:
        where = f"pool {', '.join(names)}" if names else "this repository or its synced pools"
        what = "id, id prefix or path" if "/" in ref or ref.strip().endswith(".md") else "id or id prefix"
        raise MemoryNotFoundError(f"no memory has the {what} '{ref}' in {where}: `mtlgit list` shows the ids")
    listing = ", ".join(f"{m.record.get('id')} in pool {m.pool}" for m in found[:5])
    raise MemoryNotFoundError(f"'{ref}' matches {len(found)} pool memories ({listing}): give more of the id or --pool")


def lookup(pool: Any, ref: str, names: tuple[str, ...] = ()) -> Any:
    """The memory ``ref`` names (an id, id prefix or path): the repository's own (a ``Memory``) first, then
    the synced pools' (a :class:`PoolMemory`). ``names`` restricts the search to these pools ('local' is the
    repository's own memories).

    :raises MemoryNotFoundError: saying why (not found, several match, a file with merge conflict markers).
    """
    others = tuple(n for n in names if n != "local")
    missing: MemoryNotFoundError | None = None
    if not names or "local" in names:
        try:
            return pool.get(ref, indexed=True)
        except MemoryNotFoundError as exc:
            if not others and names:
                raise
            missing = exc
    try:
        return get_memory(pool.repo, pool.config, ref, others)
    except MemoryNotFoundError:
        if missing is not None and not str(missing).startswith("no memory has"):
            raise missing from None  # a conflict or an ambiguous prefix says more
        raise


def read_texts(repo: Repo, memories: list[PoolMemory]) -> dict[str, str]:
    """The file text of each pool memory (keyed by ``pool:path``), read from its pool's mirror."""
    from mtlgit import gitobjects

    texts: dict[str, str] = {}
    for name in dict.fromkeys(m.pool for m in memories):
        mine = [m for m in memories if m.pool == name]
        blobs = gitobjects.read_blobs(mirror_repo(repo, name), [f"{m.commit}:{m.path}" for m in mine])
        for m in mine:
            texts[f"{name}:{m.path}"] = blobs[f"{m.commit}:{m.path}"].decode("utf-8", "replace")
    return texts


def local_copies(repo: Repo, memories: list[PoolMemory]) -> list[Path]:
    """A readable file for each pool memory: a copy under ``.git/mtlgit/pools/<name>/files/`` of the file as
    synced, written when missing or different. The copies are for reading (``recall --paths``); an edit there
    is overwritten, and the pool's own repository is where a memory changes."""
    texts = read_texts(repo, memories)
    out: list[Path] = []
    for memory in memories:
        folder = (pool_dir(repo, memory.pool) / "files").resolve()
        target = (folder / memory.path).resolve()
        if not target.is_relative_to(folder):
            raise MtlgitError(f"pool '{memory.pool}': path {memory.path!r} leaves the pool's folder")
        data = texts[f"{memory.pool}:{memory.path}"]
        try:
            same = target.read_text(encoding="utf-8") == data
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, data)
        out.append(target)
    return out


def hit_copies(repo: Repo, hits: list[Any]) -> list[str]:
    """The path to print for each recall hit: a local memory's own path, a pool memory's local copy (see
    :func:`local_copies`), relative to the repository's root when it is inside it."""
    found = [
        PoolMemory(h.pool, h.path, h.memory, str(read_status(repo, h.pool).get("commit")))
        for h in hits
        if h.pool != "local"
    ]
    copies = iter(local_copies(repo, found))
    out = []
    for hit in hits:
        if hit.pool == "local":
            out.append(hit.path)
            continue
        path = next(copies)
        out.append(os.path.relpath(path, repo.root) if path.is_relative_to(repo.root.resolve()) else str(path))
    return out


# --- editing the configuration -----------------------------------------------------------------------------


def add_to_config(root: Path, spec: PoolSpec) -> None:
    """Append a pool to ``.mtlgit.yaml``, keeping every other line as written."""
    path = root / CONFIG_NAME
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    config = load_config(root)
    if spec.name in {s.name for s in parse_pools(config)}:
        raise MtlgitError(f"a pool named '{spec.name}' already exists: `mtlgit pool remove {spec.name}` first")
    check_spec(spec, f"pool '{spec.name}'")
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    start = next((i for i, line in enumerate(lines) if re.match(r"^pools\s*:", line)), None)
    if start is None:
        lines += ["pools:", *spec.to_yaml_lines()]
    else:
        if re.match(r"^pools\s*:\s*\[\s*\]\s*$", lines[start]):
            lines[start] = "pools:"
        end = start + 1
        while end < len(lines) and (lines[end].startswith((" ", "-", "\t")) or not lines[end].strip()):
            end += 1
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = spec.to_yaml_lines()
    new_text = "\n".join(lines) + "\n"
    parsed = load_yaml(new_text, 1)
    if [p.get("name") for p in parsed.get("pools") or []][-1:] != [spec.name]:
        raise MtlgitError(f"could not add the pool to {CONFIG_NAME} in place: add it by hand (see README)")
    _write_atomic(path, new_text)


def _pool_item(lines: list[str], name: str) -> tuple[int, int]:
    """The first and past-the-last line of pool ``name``'s entry under ``pools:``."""
    start = next((i for i, line in enumerate(lines) if re.match(r"^pools\s*:", line)), None)
    if start is None:
        raise MtlgitError(f"no pool named '{name}' in {CONFIG_NAME}")
    item = None
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "-", "\t")) or not lines[end].strip()):
        if re.match(rf"^\s*-\s*name:\s*['\"]?{re.escape(name)}['\"]?\s*$", lines[end]):
            item = end
        end += 1
    if item is None:
        raise MtlgitError(f"no pool named '{name}' in {CONFIG_NAME} (or it is not written as '- name: {name}')")
    indent = len(lines[item]) - len(lines[item].lstrip())
    stop = item + 1
    while stop < end and lines[stop].strip() and (len(lines[stop]) - len(lines[stop].lstrip()) > indent):
        stop += 1
    return item, stop


def remove_from_config(root: Path, name: str) -> None:
    """Delete a pool's entry from ``.mtlgit.yaml`` (only its lines)."""
    path = root / CONFIG_NAME
    lines = path.read_text(encoding="utf-8").split("\n")
    item, stop = _pool_item(lines, name)
    del lines[item:stop]
    new_text = "\n".join(lines).rstrip("\n") + "\n"
    parsed = load_yaml(new_text, 1)
    if name in [p.get("name") for p in parsed.get("pools") or [] if isinstance(p, dict)]:
        raise MtlgitError(f"could not remove the pool from {CONFIG_NAME} in place: edit it by hand")
    _write_atomic(path, new_text)


def change_in_config(root: Path, name: str, values: dict[str, str]) -> PoolSpec:
    """Set keys of a pool's entry in ``.mtlgit.yaml`` (an empty value removes the key: an empty ref is the
    remote's default branch), rewriting only those keys' lines; returns the changed pool.

    :raises MtlgitError: for an unknown pool, a value :func:`check_spec` refuses, or an entry written in a way
        this cannot change in place.
    """
    path = root / CONFIG_NAME
    old = next((s for s in parse_pools(load_config(root)) if s.name == name), None)
    if old is None:
        raise MtlgitError(f"no pool named '{name}' in {CONFIG_NAME}: `mtlgit pool list` shows them")
    spec = PoolSpec(**{**old.__dict__, **values})
    check_spec(spec, f"pool '{name}'")
    lines = path.read_text(encoding="utf-8").split("\n")
    item, stop = _pool_item(lines, name)
    column = len(lines[item]) - len(lines[item].lstrip(" -"))
    for key, value in values.items():
        item, stop = _pool_item(lines, name)
        found = next((i for i in range(item + 1, stop) if re.match(rf"^ {{{column}}}{key}\s*:", lines[i])), None)
        new = [" " * column + line for line in dump_field(key, value)] if value else []
        if found is None:
            lines[stop:stop] = new
            continue
        end = found + 1
        while end < stop and len(lines[end]) - len(lines[end].lstrip()) > column:
            end += 1
        lines[found:end] = new
    new_text = "\n".join(lines)
    entries = load_yaml(new_text, 1).get("pools") or []
    parsed: dict[str, Any] = next((p for p in entries if isinstance(p, dict) and p.get("name") == name), {})
    if any(str(parsed.get(key) or "") != value for key, value in values.items()):
        raise MtlgitError(f"could not change pool '{name}' in {CONFIG_NAME} in place: edit it by hand (see README)")
    _write_atomic(path, new_text)
    return spec


def sync_or_restore(repo: Repo, spec: PoolSpec, root: Path) -> dict[str, Any]:
    """:func:`sync`, for a pool being added or changed: when it fails, the pool's status is put back as it was
    (a pool being added is forgotten), so that a failed change leaves no trace."""
    previous = read_status(repo, spec.name)
    status = sync(repo, spec, root)
    if not status.get("ok"):
        if previous:
            _write_status(repo, spec.name, previous)
        else:
            forget(repo, spec.name)
    return status


def forget(repo: Repo, name: str) -> None:
    """Remove everything mtlgit keeps for a pool: mirror, index, status."""
    shutil.rmtree(pool_dir(repo, name), ignore_errors=True)
