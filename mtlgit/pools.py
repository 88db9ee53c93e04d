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
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlgit.config import CONFIG_NAME, Config, load_config
from mtlgit.errors import MtlgitError
from mtlgit.repo import Repo

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
TRUST = ("reviewed", "untrusted")
# Only transports that move data; "ext::" runs commands, "fd::" reads descriptors.
_SAFE_GIT = ("-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never")


@dataclass
class PoolSpec:
    name: str
    url: str
    ref: str = "main"
    folder: str = "memories"
    domain: str = ""
    trust: str = "untrusted"

    def to_yaml_lines(self) -> list[str]:
        from mtlgit.frontmatter import dump_field

        lines = [f"  - name: {self.name}"]
        for key in ("url", "ref", "folder", "domain", "trust"):
            value = getattr(self, key)
            if value:
                lines.extend("    " + line for line in dump_field(key, value))
        return lines


def parse_pools(config: Config) -> list[PoolSpec]:
    """The pools of a configuration, validated.

    :raises MtlgitError: naming the pool and the fix.
    """
    specs: list[PoolSpec] = []
    seen: set[str] = set()
    for number, entry in enumerate(config.pools, 1):
        where = f"{CONFIG_NAME}: pool {number}"
        if not isinstance(entry, dict):
            raise MtlgitError(f"{where} must be a mapping with name and url")
        name = str(entry.get("name", "")).strip()
        if not NAME_RE.match(name) or name == "local":
            raise MtlgitError(f"{where}: name {name!r} must be lower-case letters, digits, '-' or '_' (not 'local')")
        if name in seen:
            raise MtlgitError(f"{where}: the name '{name}' is used twice")
        seen.add(name)
        spec = PoolSpec(
            name=name,
            url=str(entry.get("url", "")).strip(),
            ref=str(entry.get("ref", "main")).strip() or "main",
            folder=str(entry.get("folder", "memories")).strip().strip("/") or "memories",
            domain=str(entry.get("domain", "") or "").strip(),
            trust=str(entry.get("trust", "untrusted")).strip(),
        )
        check_spec(spec, where)
        specs.append(spec)
    return specs


def check_spec(spec: PoolSpec, where: str) -> None:
    """Refuse what git could take for an option or a command instead of a repository."""
    url = spec.url
    if not url:
        raise MtlgitError(f"{where}: 'url' is missing: a git URL or a local path")
    if url.startswith("-") or re.match(r"^(ext|fd)::", url, re.IGNORECASE) or any(c in url for c in "\0\n\r"):
        raise MtlgitError(f"{where}: url {url!r} is not a repository address (options and ext:: are refused)")
    if spec.ref.startswith("-") or not re.match(r"^[\w./-]+$", spec.ref) or ".." in spec.ref:
        raise MtlgitError(f"{where}: ref {spec.ref!r} is not a branch or tag name")
    if spec.folder.startswith(("-", "/")) or ".." in spec.folder.split("/"):
        raise MtlgitError(f"{where}: folder {spec.folder!r} must be a path inside the pool's repository")
    if spec.trust not in TRUST:
        raise MtlgitError(f"{where}: trust {spec.trust!r} must be 'reviewed' or 'untrusted'")


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


def _git(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *_SAFE_GIT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_git_env(),
        check=False,
    )


def _git_env() -> dict[str, str]:
    # Never wait for a password prompt: a pool that needs credentials must have them in git's own helpers.
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}


def sync(repo: Repo, spec: PoolSpec, root: Path) -> dict[str, Any]:
    """Fetch one pool into its bare mirror and index its memories; returns its new status.

    Errors are recorded in the status (and returned), not raised: one failing pool never stops the others.
    """
    from mtlgit.lock import file_lock

    folder = pool_dir(repo, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    status: dict[str, Any] = {"name": spec.name, "url": spec.url, "ref": spec.ref, "synced": time.time()}
    with file_lock(folder / "sync.lock", timeout=600):
        mirror = folder / "mirror.git"
        try:
            if not (mirror / "HEAD").exists():
                shutil.rmtree(mirror, ignore_errors=True)
                made = _git(folder, "init", "--quiet", "--bare", "mirror.git")
                if made.returncode != 0:
                    raise MtlgitError(made.stderr.strip())
            url = spec.url
            local = (root / url) if not re.match(r"^[\w+.-]+://|^[^/]+@[^/]+:", url) else None
            if local is not None and local.exists():
                url = str(local.resolve())
            fetched = _git(mirror, "fetch", "--quiet", "--no-tags", "--", url, f"+{spec.ref}:refs/mtlgit/pool")
            if fetched.returncode != 0:
                lines = fetched.stderr.strip().splitlines() or ["git fetch failed"]
                message = next((line for line in lines if line.startswith("fatal:")), lines[0])
                raise MtlgitError(f"git fetch of {spec.url} ({spec.ref}) failed: {message}")
            snapshot = index_pool(repo, spec)
            status.update(
                ok=True,
                commit=snapshot.manifest["commit"],
                memories=snapshot.n_docs,
                index=snapshot.folder.parent.name,
                snapshot=snapshot.folder.name,
                unreadable=snapshot.manifest.get("problem_files", 0),
            )
        except subprocess.TimeoutExpired:
            status.update(ok=False, error="git fetch took more than 10 minutes")
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

    manifest = Manifest(
        kind="pool",
        pool=spec.name,
        trust=spec.trust,
        commit=source.commit,
        memories=spec.folder,
        model=config.model,
        k=config.k,
        mode=config.mode,
    )
    lock = pool_dir(repo, spec.name) / "index.lock"
    return build_tree(repo, model, source, index_dir, manifest, lock, f"the index of pool '{spec.name}'", label_record)


def pool_snapshot(repo: Repo, spec: PoolSpec) -> Any | None:
    """The snapshot of a synced pool, read without running git; None when it was never synced."""
    from mtlgit.index import open_current

    status = read_status(repo, spec.name)
    index_dir = _index_dir(repo, spec.name, status)
    snapshot = open_current(index_dir) if index_dir is not None else None
    if snapshot is None or snapshot.folder.name != status.get("snapshot"):
        return None
    return snapshot


# --- editing the configuration -----------------------------------------------------------------------------


def add_to_config(root: Path, spec: PoolSpec) -> None:
    """Append a pool to ``.mtlgit.yaml``, keeping every other line as written."""
    from mtlgit.frontmatter import load_yaml

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


def remove_from_config(root: Path, name: str) -> None:
    """Delete a pool's entry from ``.mtlgit.yaml`` (only its lines)."""
    from mtlgit.frontmatter import load_yaml

    path = root / CONFIG_NAME
    lines = path.read_text(encoding="utf-8").split("\n")
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
    del lines[item:stop]
    new_text = "\n".join(lines).rstrip("\n") + "\n"
    parsed = load_yaml(new_text, 1)
    if name in [p.get("name") for p in parsed.get("pools") or [] if isinstance(p, dict)]:
        raise MtlgitError(f"could not remove the pool from {CONFIG_NAME} in place: edit it by hand")
    _write_atomic(path, new_text)


def forget(repo: Repo, name: str) -> None:
    """Remove everything mtlgit keeps for a pool: mirror, index, status."""
    shutil.rmtree(pool_dir(repo, name), ignore_errors=True)
