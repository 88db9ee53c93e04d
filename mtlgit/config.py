"""``.mtlgit.yaml``: the committed configuration of a pool. Every key is optional."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtlgit import frontmatter
from mtlgit.errors import MtlgitError

CONFIG_NAME = ".mtlgit.yaml"
MODES = ("hybrid", "bm25", "dense")
# How a recall learns what changed since the index was built (README, "Never stale"). auto: stat below
# AUTO_WATCH_FILES files, the watcher from there (Linux). stat: every memory file's stat on every recall.
# watch: ask the worktree's inotify watcher at any size (stat when none runs). folders: only the folders and
# recently written files (an edit in place of an older file waits for the git hooks or `mtlgit index`).
FRESHNESS = ("auto", "stat", "watch", "folders")

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
# The branch whose memories passed review (`mtlgit recall --reviewed`).
reviewed_ref: origin/main
"""


@dataclass
class Config:
    memories: str = "memories"
    model: str = "default"
    k: int = 3
    mode: str = "hybrid"
    freshness: str = "auto"
    min_confidence: float | None = None
    reviewed_ref: str = "origin/main"
    pools: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def load_config(root: Path) -> Config:
    """Read ``.mtlgit.yaml`` at the repository root; defaults when it does not exist.

    :raises MtlgitError: naming the file and line when it is not valid.
    """
    path = root / CONFIG_NAME
    if not path.exists():
        return Config()
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
    reviewed = raw.get("reviewed_ref", "origin/main")
    if not isinstance(reviewed, str) or not reviewed.strip() or reviewed.startswith("-"):
        raise fail("reviewed_ref", "'reviewed_ref' must be a git ref such as origin/main")
    config.reviewed_ref = reviewed.strip()
    pools = raw.get("pools") or []
    if not isinstance(pools, list):
        raise fail("pools", "'pools' must be a list of pools (see `mtlgit pool add --help`)")
    config.pools = pools
    return config
