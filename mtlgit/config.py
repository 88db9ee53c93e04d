"""``.mtlgit.yaml``: the committed configuration of a pool. Every key is optional."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlgit import frontmatter
from mtlgit.errors import MtlgitError
from mtlgit.repo import find_repo
from mtlgit.rules import FRESHNESS, MODES, TRUST, is_pool_name

CONFIG_NAME = ".mtlgit.yaml"

DEFAULT_CONFIG_TEXT = """\
# mtlgit configuration: see docs/format.md
# Folder of the memory files, relative to the repository root.
memories: memories
# Embedding model: "default" (ships inside mtlgit), a model2vec folder, or a Hugging Face hub id.
model: default
recall:
  k: 3
  mode: hybrid
  # How recall sees edits (never stale): auto (stat every file below 5,000 files, the inotify watcher from
  # there), stat, watch, or folders (folders and recent files only).
  freshness: auto
  # Leave out memories less likely than this (0-1) to apply: recall then returns fewer than k, or none.
  # Default 0.55 (measured, README); 0 always returns k.
  # min_confidence: 0.55
  # Most tokens (estimated, 4 characters each) of the memory block given to an agent (--prompt, --json, MCP):
  # whole items in rank order, the rest named on stderr. Default 2000; 0: no cap.
  # budget: 2000
# The branch whose memories passed review (`mtlgit recall --reviewed`, `mtlgit review`). Default: the remote's
# default branch (origin/HEAD, else the one of origin/main, origin/master, origin/trunk that exists; with no
# origin and one remote, that remote's the same way).
# reviewed_ref: origin/main
"""

# The branch names a remote's default branch usually has, for reviewed_ref when origin/HEAD is not set.
DEFAULT_BRANCHES = ("main", "master", "trunk")


@dataclass
class Config:
    memories: str = "memories"
    model: str = "default"
    k: int = 3
    mode: str = "hybrid"
    freshness: str = "auto"
    min_confidence: float | None = None
    budget: int | None = None  # None: mtlgit.recall_request.DEFAULT_BUDGET
    reviewed_ref: str | None = None  # None: not set, and the remote has no default branch (default_reviewed_ref)
    pools: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def load_config(root: Path) -> Config:
    """Read ``.mtlgit.yaml`` at the repository root; defaults when it does not exist.

    :raises MtlgitError: naming the file and line when it is not valid.
    """
    path = root / CONFIG_NAME
    if not path.exists():
        return Config(reviewed_ref=default_reviewed_ref(root))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MtlgitError(f"{CONFIG_NAME}: not UTF-8: re-save it as UTF-8") from None
    except OSError as exc:
        raise MtlgitError(f"{CONFIG_NAME}: cannot read it: {exc.strerror}") from None
    try:
        raw = frontmatter.load_yaml(text, first_line=1)
    except frontmatter.FrontMatterError as exc:
        message = exc.message.replace("front matter", "the configuration")
        raise MtlgitError(f"{CONFIG_NAME}:{exc.line}: {message}") from None
    return parse_config(raw, text, root, path)


def _line(text: str, key: str) -> int:
    for number, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith(f"{key}:"):
            return number
    return 1


def parse_config(raw: dict[str, Any], text: str, root: Path, path: Path) -> Config:
    def fail(key: str, message: str) -> MtlgitError:
        return MtlgitError(f"{CONFIG_NAME}:{_line(text, key)}: {message}")

    config = Config(raw=raw, path=path)
    memories = raw.get("memories", "memories")
    if not isinstance(memories, str) or not memories.strip():
        raise fail("memories", "'memories' must be a folder path relative to the repository, e.g. memories")
    target = (root / memories).resolve()
    if Path(memories).is_absolute() or not target.is_relative_to(root.resolve()):
        raise fail("memories", f"'memories: {memories}' points outside the repository: use a folder inside it")
    config.memories = memories.strip().rstrip("/")
    model = raw.get("model", "default")
    if not isinstance(model, str) or not model.strip():
        raise fail("model", "'model' must be 'default', a model2vec folder, or a hub id")
    config.model = model.strip()
    recall = raw.get("recall") or {}
    if not isinstance(recall, dict):
        raise fail("recall", "'recall' must be a mapping, e.g. recall: {k: 3, mode: hybrid}")
    k = recall.get("k", 3)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
        raise fail("k", "'recall.k' must be a whole number from 1 to 1000")
    config.k = k
    mode = recall.get("mode", "hybrid")
    if mode not in MODES:
        raise fail("mode", f"'recall.mode' must be one of {', '.join(MODES)}")
    config.mode = mode
    freshness = recall.get("freshness", "auto")
    if freshness not in FRESHNESS:
        raise fail("freshness", f"'recall.freshness' must be one of {', '.join(FRESHNESS)}")
    config.freshness = freshness
    bar = recall.get("min_confidence")
    if bar is not None and (isinstance(bar, bool) or not isinstance(bar, (int, float)) or not 0 <= bar <= 1):
        raise fail("min_confidence", "'recall.min_confidence' must be a number from 0 to 1, e.g. 0.5 (0 keeps all)")
    config.min_confidence = None if bar is None else float(bar)
    budget = recall.get("budget")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 0):
        raise fail("budget", "'recall.budget' must be a whole number of tokens, e.g. 2000 (0: no cap)")
    config.budget = budget
    reviewed = raw.get("reviewed_ref")
    if reviewed is None:
        config.reviewed_ref = default_reviewed_ref(root)
    elif not isinstance(reviewed, str) or not reviewed.strip() or reviewed.startswith("-"):
        raise fail("reviewed_ref", "'reviewed_ref' must be a git ref such as origin/main")
    else:
        config.reviewed_ref = reviewed.strip()
    pools = raw.get("pools") or []
    if not isinstance(pools, list):
        raise fail("pools", "'pools' must be a list of pools (see `mtlgit pool add --help`)")
    config.pools = pools
    return config


def default_reviewed_ref(root: Path) -> str | None:
    """The remote's default branch, the reviewed branch when ``reviewed_ref`` is not set: the branch
    ``origin/HEAD`` names (``git clone`` sets it), else the one of origin's main, master and trunk that exists;
    when there is no origin and exactly one remote, that remote's the same way (``git clone -o upstream``).
    None when nothing tells.

    The refs are git's to read (a reftable repository keeps no ref files), but a git process costs every
    refresh of the index, which reads the configuration: it is spared when the files alone answer, as in
    most clones (``origin/HEAD`` is a loose file wherever refs are files: symbolic refs are never packed) and
    in repositories without remote-tracking refs.
    """
    common = _common_dir(root)
    if common is None:
        return None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        head = (common / "refs/remotes/origin/HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref: refs/remotes/origin/"):
            return "origin/" + head[len("ref: refs/remotes/origin/") :]
    if not _may_have_remote_refs(common):
        return None
    from mtlgit import git  # only here: loading the configuration does not load subprocess

    try:
        refs = git.remote_refs(root)
    except git.GitError:
        # Not a reason to fail every command that reads the configuration: the commands that need the
        # reviewed branch say that none is known, and how to set it.
        return None
    return _default_branch(refs)


def _may_have_remote_refs(common: Path) -> bool:
    """Whether remote-tracking refs may exist: loose ones, packed ones, or refs in a store only git reads."""
    if (common / "reftable").is_dir():
        return True
    try:
        if os.listdir(common / "refs/remotes"):
            return True
    except OSError:
        pass
    try:
        return b" refs/remotes/" in (common / "packed-refs").read_bytes()
    except OSError:
        return False


def _default_branch(refs: dict[str, str]) -> str | None:
    """The default branch of origin, or of the one remote there is, among ``refs`` (see git.remote_refs)."""
    prefix = "refs/remotes/"
    # A remote's HEAD names its default branch; remote names may hold slashes (refs/remotes/team/a/HEAD).
    heads = {
        name[len(prefix) : -len("/HEAD")]: target[len(name) - len("HEAD") :]
        for name, target in refs.items()
        if name.endswith("/HEAD") and target.startswith(name[: -len("HEAD")])
    }
    remotes = set(heads)
    for name in refs:
        rest = name[len(prefix) :]
        if not any(rest.startswith(remote + "/") for remote in heads):
            remotes.add(rest.split("/", 1)[0])
    if "origin" in remotes:
        remote = "origin"
    elif len(remotes) == 1:
        (remote,) = remotes
    else:
        return None
    if remote in heads:
        return f"{remote}/{heads[remote]}"
    # A branch named main/<something> is not the branch main: only a ref of that exact name counts.
    found = [branch for branch in DEFAULT_BRANCHES if f"{prefix}{remote}/{branch}" in refs]
    return f"{remote}/{found[0]}" if len(found) == 1 else None


@functools.lru_cache(maxsize=8)
def _common_dir(root: Path) -> Path | None:
    """The git dir holding the refs of the work tree at ``root``, found once a process (a work tree's does not
    move, and finding it may run git)."""
    try:
        return find_repo(root).common_dir
    except MtlgitError:
        return None


@dataclass
class PoolSpec:
    """One entry of ``pools:``: where a pool's memories are read from, and how far they are trusted."""

    name: str
    url: str
    ref: str = ""  # empty: the remote's default branch (its HEAD)
    folder: str = "memories"
    domain: str = ""
    trust: str = "untrusted"

    def to_yaml_lines(self) -> list[str]:
        lines = [f"  - name: {self.name}"]
        for key in ("url", "ref", "folder", "domain", "trust"):
            value = getattr(self, key)
            if value:
                lines.extend("    " + line for line in frontmatter.dump_field(key, value))
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
        if not is_pool_name(name):
            raise MtlgitError(f"{where}: name {name!r} must be lower-case letters, digits, '-' or '_' (not 'local')")
        if name in seen:
            raise MtlgitError(f"{where}: the name '{name}' is used twice")
        seen.add(name)
        spec = PoolSpec(
            name=name,
            url=str(entry.get("url", "")).strip(),
            ref=str(entry.get("ref") or "").strip(),
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
    if spec.ref and (spec.ref.startswith("-") or not re.match(r"^[\w./-]+$", spec.ref) or ".." in spec.ref):
        raise MtlgitError(f"{where}: ref {spec.ref!r} is not a branch or tag name")
    if spec.folder.startswith(("-", "/")) or ".." in spec.folder.split("/"):
        raise MtlgitError(f"{where}: folder {spec.folder!r} must be a path inside the pool's repository")
    if spec.trust not in TRUST:
        raise MtlgitError(f"{where}: trust {spec.trust!r} must be 'reviewed' or 'untrusted'")


def missing_memories_folder(root: Path, folder: str) -> str | None:
    """Why a pool has nothing to read when its memories folder does not exist, with the fix; None when it does."""
    if (root / folder).is_dir():
        return None
    if not (root / CONFIG_NAME).exists():
        return f"mtlgit is not set up in {root}: run `mtlgit init` (--memories DIR for a folder other than {folder}/)"
    return (
        f"the memories folder {folder}/ of {CONFIG_NAME} does not exist: restore it (`git checkout -- {folder}`), "
        f"create it, or set `memories:` in {CONFIG_NAME} to your folder"
    )
