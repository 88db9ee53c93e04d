"""Recording what a recall returned: the receipts of the outcome ledger (:mod:`mtlgit.ledger`).

Kept apart from the ledger's figures because every agent recall runs it: it imports nothing that the recall
path does not already hold, and reads its settings from a cache instead of the YAML file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtlgit.errors import MtlgitError
from mtlgit.ids import new_ulid
from mtlgit.repo import Repo, find_repo

try:  # CPython's built-in digests: hashlib would load OpenSSL, ~3 ms of every recall's process
    from _sha1 import sha1  # type: ignore[import-not-found]
    from _sha256 import sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import sha1, sha256

if TYPE_CHECKING:
    import numpy as np

    from mtlgit.recall import Hit, RecallResult

TOOLS = ("cli", "hook", "mcp", "extract", "transcript")
# The default of ``recall.feedback_weight``, chosen with benchmarks/sim_ledger.py (docs/ledger.md).
DEFAULT_FEEDBACK_WEIGHT = 0.5
# mtlgit.config.CONFIG_NAME, not imported: mtlgit.config imports the YAML parser (see settings).
CONFIG_FILE = ".mtlgit.yaml"

_HEX = frozenset("0123456789abcdef")
# Formats are checked with string methods, not regular expressions: compiling them would cost every recall.


def is_clone_name(text: str) -> bool:
    return len(text) == 16 and _HEX.issuperset(text)


def _is_object_id(text: str) -> bool:
    return len(text) in (40, 64) and _HEX.issuperset(text)


def _is_memory_id(text: str) -> bool:
    return 0 < len(text) <= 64 and text.isascii() and text.replace("-", "").replace("_", "").isalnum()


def ledger_dir(repo: Repo) -> Path:
    return repo.state_dir / "ledger"


def event_files(repo: Repo, kind: str) -> list[Path]:
    """Every clone's ``receipts`` or ``outcomes`` file held here (this clone's and those synced in)."""
    folder = ledger_dir(repo) / kind
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".jsonl" and is_clone_name(p.stem))
    except FileNotFoundError:
        return []


# What a long-lived process (the MCP server) has read: each ledger folder's clone name, which never changes once
# made, and each work tree's settings, read again only when the configuration's stat changes.
_CLONES: dict[Path, str] = {}
_SETTINGS: dict[Path, tuple[list[int], LedgerConfig]] = {}


def clone_id(repo: Repo) -> str:
    """This clone's name in the ledger: random, made once, shared by its worktrees (no name or e-mail)."""
    folder = ledger_dir(repo)
    if folder not in _CLONES:
        _CLONES[folder] = _clone_id(folder)
    return _CLONES[folder]


def _clone_id(folder: Path) -> str:
    path = folder / "clone"
    try:
        text = path.read_text(encoding="ascii").strip()
        if is_clone_name(text):
            return text
    except (OSError, UnicodeDecodeError):
        pass
    folder.mkdir(parents=True, exist_ok=True)
    # Written whole to a temporary name, then linked into place: a full disk or a crash never leaves a
    # half-written name, and of two processes racing to make one, the first link wins.
    candidate = os.urandom(8).hex()
    temporary = folder / f".clone.{os.getpid()}.{candidate}"
    try:
        temporary.write_text(candidate + "\n", encoding="ascii")
        try:
            os.link(temporary, path)
        except FileExistsError:
            text = path.read_text(encoding="ascii", errors="replace").strip()
            if is_clone_name(text):
                return text
            os.replace(temporary, path)  # a damaged name (from an older version): a new one serves as well
            return candidate
    finally:
        temporary.unlink(missing_ok=True)
    return candidate


def append_event(repo: Repo, kind: str, event: dict[str, Any]) -> None:
    folder = ledger_dir(repo) / kind
    line = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    path = folder / f"{clone_id(repo)}.jsonl"
    # One write of one line with O_APPEND: concurrent recalls never interleave their lines.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:  # the first event of its kind: the folder is made once, not checked each time
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class LedgerConfig:
    """The ledger's settings. A plain class: building a dataclass costs a recall's process ~0.3 ms."""

    record = True
    query_text = False
    feedback_weight = DEFAULT_FEEDBACK_WEIGHT

    def __init__(
        self, record: bool = True, query_text: bool = False, feedback_weight: float = DEFAULT_FEEDBACK_WEIGHT
    ) -> None:
        self.record, self.query_text, self.feedback_weight = record, query_text, feedback_weight


def ledger_config(raw: dict[str, Any]) -> LedgerConfig:
    """``ledger.record``, ``ledger.query_text`` and ``recall.feedback_weight`` from the raw ``.mtlgit.yaml``.

    :raises MtlgitError: naming the key and the fix when a value has the wrong type.
    """
    section = raw.get("ledger") or {}
    if not isinstance(section, dict):
        raise MtlgitError(".mtlgit.yaml: 'ledger' must be a mapping, e.g. ledger: {record: true, query_text: false}")
    values: dict[str, Any] = {}
    for key in ("record", "query_text"):
        value = section.get(key, getattr(LedgerConfig, key))
        if not isinstance(value, bool):
            raise MtlgitError(f".mtlgit.yaml: 'ledger.{key}' must be true or false")
        values[key] = value
    recall = raw.get("recall") or {}
    weight = recall.get("feedback_weight", DEFAULT_FEEDBACK_WEIGHT) if isinstance(recall, dict) else None
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 2:
        raise MtlgitError(".mtlgit.yaml: 'recall.feedback_weight' must be a number from 0 (off) to 2")
    return LedgerConfig(values["record"], values["query_text"], float(weight))


def settings(repo: Repo) -> LedgerConfig:
    """The ledger's settings, kept in a small cache until ``.mtlgit.yaml`` changes: the recall fast path
    never imports the YAML parser, and importing it to record a receipt would cost more than the recording."""
    try:
        stat = (repo.root / CONFIG_FILE).stat()
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    except OSError:
        key = []
    memo = _SETTINGS.get(repo.root)  # by work tree: each has its own configuration
    if memo is not None and memo[0] == key:
        return memo[1]
    config = _read_settings(repo, key)
    _SETTINGS[repo.root] = (key, config)
    return config


def _read_settings(repo: Repo, key: list[int]) -> LedgerConfig:
    cache_path = ledger_dir(repo) / "config.json"
    try:
        cached = json.loads(cache_path.read_bytes())
        if cached["key"] == key:
            return LedgerConfig(**cached["config"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from mtlgit.config import load_config

    config = ledger_config(load_config(repo.root).raw)
    try:
        ledger_dir(repo).mkdir(parents=True, exist_ok=True)
        write_json(cache_path, {"key": key, "config": config.__dict__})
    except OSError:
        pass  # only a cache: a read-only checkout or a full disk reads the configuration each time
    return config


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def query_hash(query: str) -> str:
    """The receipt's handle on a query: the same task text always gives the same hash."""
    return str(sha256(" ".join(query.split()).encode("utf-8")).hexdigest())[:16]


def _head_commit(repo: Repo) -> str | None:
    """HEAD's commit read from the files git keeps (a ``git`` process would cost the whole budget). Read afresh at
    every recall, with plain system calls (~15 us): a cache keyed by the files' stat can miss a ref moved twice
    within a file system's timestamp step, since git often reuses the inode and a ref's size never changes."""
    head = _read_small(repo.git_dir / "HEAD")
    if head is None:
        return None
    if not head.startswith("ref: "):
        return head if _is_object_id(head) else None
    ref = head[5:]
    value = _read_small(repo.common_dir / ref)
    if value is not None:
        return value if _is_object_id(value) else None
    packed = _read_small(repo.common_dir / "packed-refs")
    for line in (packed or "").splitlines():
        if line.endswith(" " + ref) and _is_object_id(line[: line.index(" ")]):
            return line[: line.index(" ")]
    return None


def _read_small(path: Path) -> str | None:
    """The text of a small file, stripped; None when it cannot be read as a file (missing, a folder, not UTF-8)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):  # a folder (IsADirectoryError on read), or bytes that are no text
        return None
    finally:
        os.close(fd)


def _blob_id(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return str(sha1(b"blob %d\0" % len(data) + data).hexdigest())  # noqa: S324 - git's object id, as ids.blob_id


_NAME_PUNCTUATION = str.maketrans("", "", "._@+/:-")


def _agent_name(agent: str | None) -> str | None:
    name = agent if agent is not None else os.environ.get("MTLGIT_AGENT")
    if not name or len(name) > 64 or not name.isascii() or not name.translate(_NAME_PUNCTUATION).isalnum():
        return None
    from mtlgit.secrets import find_secrets  # only when a name is given: a token pasted as one is not kept

    return None if find_secrets(name) else name


def _hit_blob(repo: Repo, result: RecallResult, hit: Hit, at_rev: bool) -> str | None:
    """The blob id of a local hit: of the content the snapshot recalled it from (a revision's, or the work
    tree's as it was indexed: the snapshot was just checked fresh), else hashed from the work tree."""
    if hit.blob:
        return hit.blob
    if not at_rev:
        return _blob_id(repo.root / hit.path)
    return result.snapshot.blob_of(hit.path)


def record_recall(
    result: RecallResult,
    tool: str = "cli",
    agent: str | None = None,
    repo: Repo | None = None,
    later: Callable[[Callable[[], bool]], None] | None = None,
) -> str | None:
    """Append a receipt for ``result`` and return its id (``rc-`` and a ULID); None when there was nothing
    recalled or the configuration says ``ledger.record: false``.

    :param agent: who asked (default: the ``MTLGIT_AGENT`` environment variable); kept only if it looks like a
        name and not like a secret.
    :param later: given, the receipt is checked and its id returned at once, and the job handed to ``later``
        appends it and says whether it did (the MCP server runs it right after the answer is sent, while the client
        reads it: the file work is off the call's time). A receipt that cannot be appended then is said on
        stderr.
    """
    if not result.hits:
        return None
    repo = repo or find_repo()
    config = settings(repo)
    if not config.record:
        return None
    at_rev = result.snapshot.manifest.get("kind") == "rev"
    event: dict[str, Any] = {
        "v": 1,
        "id": "rc-" + new_ulid(),
        "at": now(),
        "commit": result.snapshot.manifest.get("commit") if at_rev else _head_commit(repo),
        "tool": tool if tool in TOOLS else "cli",
        "agent": _agent_name(agent),
        "query_sha": query_hash(result.query),
        "memories": [str(hit.memory.get("id", "")) for hit in result.hits],
        # Another pool's files are not in this work tree: its hits carry no blob id.
        "blobs": [_hit_blob(repo, result, hit, at_rev) if hit.pool == "local" else None for hit in result.hits],
        "pools": [hit.pool for hit in result.hits],
    }
    if config.query_text:
        from mtlgit.secrets import find_secrets

        if find_secrets(result.query):
            event["query_withheld"] = "it looks like it holds a secret"
        else:
            event["query"] = result.query
    check_event(event)
    receipt = str(event["id"])
    if later is None:
        return receipt if _append_receipt(repo, event) else None

    def write() -> bool:
        if _append_receipt(repo, event):
            return True
        print(f"mtlgit: receipt {receipt} could not be written to the ledger", file=sys.stderr)
        return False

    later(write)
    return receipt


def _append_receipt(repo: Repo, event: dict[str, Any]) -> bool:
    try:
        append_event(repo, "receipts", event)
    except OSError:
        return False  # a read-only checkout or a full disk: the recall still answers, without a receipt
    return True


def receipt_line(receipt: str) -> str:
    """The line printed after a ``--prompt`` block, so the agent can report on the recall."""
    return (
        f"mtlgit receipt: {receipt} (when the task is done: "
        f"`mtlgit feedback {receipt} --outcome success|failure --used N`)"
    )


def check_event(event: dict[str, Any]) -> None:
    """Ids, hashes and names must have their formats: a secret cannot hide in a field that is not scanned."""
    for memory_id in event.get("memories", []):
        if not _is_memory_id(memory_id):
            raise MtlgitError(f"the ledger takes memory ids of letters and digits, not {memory_id[:40]!r}")
    for blob in (event.get("blobs") or []) + [event.get("commit")]:
        if blob is not None and not _is_object_id(blob):
            raise MtlgitError("the ledger takes git object ids of 40 hex digits")


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a full disk leaves no temporary file behind


# --- the recall prior --------------------------------------------------------------------------------------


class RecallPrior:
    """The prior of every memory that has one, looked up by the ids a snapshot holds (``docs.id``, bytes)."""

    def __init__(self, ids: list[str], values: list[float]) -> None:
        """:param ids: sorted as bytes, as :func:`recall_prior` keeps them."""
        import numpy as np

        self.ids = np.array(ids, dtype="S64")
        self.values = np.array(values, dtype=np.float32)

    def __call__(self, memory_ids: np.ndarray) -> np.ndarray:
        """The prior of each of ``memory_ids`` (0 for a memory without one), aligned with them."""
        import numpy as np

        at = np.minimum(np.searchsorted(self.ids, memory_ids), len(self.ids) - 1)
        return np.where(self.ids[at] == memory_ids, self.values[at], np.float32(0.0))


# The last prior read in this process and what it was read for: the MCP server recalls many times between
# two outcomes.
_LAST_PRIOR: dict[Path, tuple[list[Any], RecallPrior | None]] = {}


def recall_prior(repo: Repo) -> RecallPrior | None:
    """The prior recall adds to its fused scores (:func:`mtlgit.ledger.prior`); None when it is off
    (``recall.feedback_weight: 0``), when no memory has one, or when the ledger cannot be read.

    Read from ``prior.json``, kept beside the outcomes until an outcomes file or the weight changes: a recall
    then imports none of the ledger's parsing and reads one small file. Only the memories with a prior other
    than 0 are kept, sorted as bytes for the lookup.
    """
    weight = settings(repo).feedback_weight
    if weight <= 0:
        return None
    folder = ledger_dir(repo)
    try:
        key: list[Any] = [weight]
        for path in event_files(repo, "outcomes"):
            stat = path.stat()
            key.append([path.name, stat.st_size, stat.st_mtime_ns])
        if folder in _LAST_PRIOR and _LAST_PRIOR[folder][0] == key:
            return _LAST_PRIOR[folder][1]
        cache_path = folder / "prior.json"
        try:
            cached = json.loads(cache_path.read_bytes())
            ids, values = cached["ids"], cached["values"]
            fresh = (
                cached["key"] == key
                and len(ids) == len(values)
                and all(isinstance(i, str) for i in ids)
                and all(isinstance(v, float) for v in values)
                and all(a < b for a, b in pairwise(ids))  # sorted, or the lookup would miss
            )
        except (OSError, ValueError, KeyError, TypeError):
            fresh = False
        if not fresh:
            from mtlgit.ledger import prior_table

            ids, values = prior_table(repo, weight)
            kept = sorted((i.encode("utf-8"), float(v)) for i, v in zip(ids, values.tolist(), strict=True) if v)
            cached = {"key": key, "ids": [i.decode("utf-8") for i, _v in kept], "values": [v for _i, v in kept]}
            try:
                write_json(cache_path, cached)
            except OSError:
                pass  # only a cache: a read-only checkout or a full disk builds the prior each time
        built = RecallPrior(cached["ids"], cached["values"]) if cached["ids"] else None
    except OSError:
        return None  # a ledger that cannot be read leaves recall as it is without one
    _LAST_PRIOR[folder] = (key, built)
    return built
