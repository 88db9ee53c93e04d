"""The typed manifest of a generation: what a snapshot was built from, its segments, and how to check it.

One dataclass for the three kinds of snapshot (working tree, git revision, pool mirror), written in one place
(:func:`mtlgit.index.writer.write_generation`). Readers outside the index may still look fields up by name
(``manifest["k"]``, ``manifest.get("commit")``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from mtlgit.index.common import INDEX_VERSION, IndexCorrupt

if TYPE_CHECKING:
    from mtlgit.config import Config

# The settings of the configuration a recall reads from the snapshot it searches (every field of Config but
# its raw text, its path and its pools, which only the working tree's snapshot records, validated).
RECALL_SETTINGS = ("memories", "model", "k", "mode", "min_confidence", "budget", "freshness", "reviewed_ref")


@dataclass
class Manifest:
    kind: str = "worktree"  # worktree, rev or pool
    memories: str = "memories"
    model: str = "default"
    k: int = 3
    mode: str = "hybrid"
    min_confidence: float | None = None
    budget: int | None = None  # recall.budget (None: mtlgit.recall_request.DEFAULT_BUDGET)
    freshness: str = "auto"
    reviewed_ref: str | None = None
    pools: list[dict[str, Any]] = field(default_factory=list)
    rev: str | None = None
    commit: str | None = None
    pool: str | None = None
    trust: str | None = None
    model_key: str = ""
    model_files: list[Any] = field(default_factory=list)
    dim: int = 0
    # The segments, oldest (the base) first; each has a live mask of its files in this generation.
    segments: list[str] = field(default_factory=list)
    docs: int = 0  # live memories
    files: int = 0  # live files
    problem_files: int = 0  # live files that are not memories because of a problem (duplicate ids included)
    total_len: int = 0  # terms in all live memories: BM25's average length is total_len / docs
    dead_docs: list[list[int]] = field(default_factory=list)  # [segment, row]: an id kept by an earlier path
    # Freshness of a working-tree snapshot (see freshness.py).
    config_stat: list[int] | None = None
    config_racy: str | None = None
    dirs: list[list[Any]] = field(default_factory=list)
    racy_dirs: list[list[Any]] = field(default_factory=list)
    racy: list[list[str]] = field(default_factory=list)  # [path, blob id] of files written close to the build
    built_ns: int = 0
    # Memory files listed but not read (no permission, a broken symlink), and folders not listed: a chmod or a
    # symlink's new target changes no stat the snapshot records, so every freshness check tries to open these.
    unreadable: list[str] = field(default_factory=list)
    # [token, number] of the watcher's changes this snapshot has taken in (freshness "watch"), or None
    watch: list[Any] | None = None
    parts: dict[str, list[int]] = field(default_factory=dict)
    version: int = INDEX_VERSION

    @classmethod
    def from_config(cls, config: Config, kind: str, **fields: Any) -> Manifest:
        """The manifest of a snapshot of ``kind`` built under ``config``: its recall settings, then ``fields``
        (what the source adds, or overrides: a pool's own memories folder)."""
        return cls(kind=kind, **{**{name: getattr(config, name) for name in RECALL_SETTINGS}, **fields})

    def __getitem__(self, key: str) -> Any:
        if key not in _NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _NAMES

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in _NAMES else default

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> Manifest:
        try:
            return cls(**{key: value for key, value in data.items() if key in _NAMES})
        except TypeError as exc:
            raise IndexCorrupt(f"{where}/manifest.json: {exc}") from None


_NAMES = frozenset(f.name for f in fields(Manifest))
