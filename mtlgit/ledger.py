"""The outcome ledger: which recalled memories an agent used, and how its task ended.

Two kinds of event, each one JSON line appended to a file that only its clone writes:

- a **receipt** (``receipts/<clone>.jsonl``) for each recall an agent gets: its id, the memory ids and blob
  ids returned, the commit, the time, the tool and agent, a hash of the query (its text only when
  ``ledger.query_text: true``);
- an **outcome** (``outcomes/<clone>.jsonl``) for a receipt: success, failure or unknown, the items used,
  the items that misled, a note. An outcome carries the receipt's memory ids, so usefulness is computed from
  outcomes alone; the latest outcome of a receipt replaces earlier ones.

The ledger is private (``.git/mtlgit/ledger/``, shared by the clone's worktrees) until ``mtlgit ledger sync``
shares it through a git ref (:mod:`mtlgit.ledger_git`). Files only grow, and a clone writes only its own, so
two clones never touch the same line and nothing has to be merged by hand. Nothing free-form is written
without a secret scan; ids and hashes are checked against their formats instead.

Figures: ``success rate when used`` against ``when recalled but not used``, each with a 95% Wilson interval;
fewer than :data:`MIN_EVIDENCE` outcomes on either side is "too little evidence".
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtlgit.errors import MtlgitError, Problem
from mtlgit.ids import new_ulid
from mtlgit.receipts import (
    DEFAULT_FEEDBACK_WEIGHT,
    TOOLS,
    LedgerConfig,
    append_event,
    check_event,
    event_files,
    ledger_config,
    ledger_dir,
    now,
    query_hash,
    recall_prior,
    receipt_line,
    record_recall,
    settings,
    write_json,
)
from mtlgit.repo import Repo, find_repo
from mtlgit.secrets import find_secrets

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_FEEDBACK_WEIGHT",
    "LedgerConfig",
    "event_files",
    "figures",
    "ledger_config",
    "ledger_dir",
    "prior",
    "query_hash",
    "receipt_line",
    "record_outcome",
    "record_recall",
]

OUTCOMES = ("success", "failure", "unknown")
# Fewer outcomes than this on either side (used, recalled but not used): no verdict.
MIN_EVIDENCE = 5
Z95 = 1.959963984540054
# Pseudo-outcomes at the pool's success rate that each side starts with: a handful of outcomes moves the prior
# a little, a steady record moves it up to its bound.
PRIOR_PSEUDO = 4.0
# The difference of shrunk success rates (used minus not used) that earns the full bound.
PRIOR_FULL_EFFECT = 0.25

_RECEIPT_RE = re.compile(r"\brc-[0-9A-HJKMNP-TV-Z]{26}\b")
_USING_RE = re.compile(r"Using Memory Items? ((?:\d+(?:\s*(?:,|and|&)\s*)?)+)", re.IGNORECASE)


# --- where the ledger lives --------------------------------------------------------------------------------


# --- configuration -----------------------------------------------------------------------------------------


# --- receipts ----------------------------------------------------------------------------------------------


def find_receipt(repo: Repo, ref: str) -> dict[str, Any]:
    """The receipt whose id is ``ref`` or starts with it (at least 8 characters after ``rc-``).

    :raises MtlgitError: when none or several match, with what to do.
    """
    ref = ref.strip()
    if not ref.startswith("rc-"):
        ref = "rc-" + ref
    if len(ref) < 11 or not re.fullmatch(r"rc-[0-9A-Za-z]+", ref):
        raise MtlgitError(f"'{ref}' is not a receipt id: give the rc-... id printed after the recalled items")
    needle = f'"id":"{ref.upper().replace("RC-", "rc-", 1)}'.encode()
    found: dict[str, dict[str, Any]] = {}
    for path in event_files(repo, "receipts"):
        data = path.read_bytes()
        at = data.find(needle)
        while at != -1:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            event = _parse_line(data[start : end if end != -1 else len(data)])
            if event is not None:
                found[str(event["id"])] = event
            at = data.find(needle, at + 1)
    if not found:
        raise MtlgitError(
            f"no receipt {ref} in this clone's ledger: check the id, or run `mtlgit ledger sync` if another "
            "clone recorded it"
        )
    if len(found) > 1:
        raise MtlgitError(f"{ref} matches {len(found)} receipts: give more of the id")
    return next(iter(found.values()))


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("id"), str) else None


# --- outcomes ----------------------------------------------------------------------------------------------


def _resolve_items(receipt: dict[str, Any], refs: Sequence[str | int], what: str) -> list[str]:
    """Memory ids of a receipt's items named by number (Memory Item N), id or id prefix."""
    memories: list[str] = receipt.get("memories") or []
    out: list[str] = []
    for ref in refs:
        text = str(ref).strip()
        if text.isdigit() and 1 <= int(text) <= len(memories):
            chosen = [memories[int(text) - 1]]
        else:
            chosen = [m for m in memories if text and m.upper().startswith(text.upper())]
        if len(chosen) > 1:
            raise MtlgitError(f"--{what} {text}: matches {len(chosen)} items of {receipt['id']}: give more of the id")
        if not chosen:
            listing = ", ".join(f"{n} = {m}" for n, m in enumerate(memories, 1))
            raise MtlgitError(
                f"--{what} {text}: not one of the items of {receipt['id']} ({listing}); give an item number or id"
            )
        if chosen[0] not in out:
            out.append(chosen[0])
    return out


def record_outcome(
    repo: Repo,
    receipt_ref: str,
    outcome: str,
    used: Sequence[str | int] = (),
    hurt: Sequence[str | int] = (),
    note: str | None = None,
    tool: str = "cli",
    refresh: bool = True,
) -> dict[str, Any]:
    """Append the outcome of the task a receipt was recalled for; return the event written.

    :param used: items the agent used: numbers (Memory Item N), memory ids or id prefixes.
    :param hurt: items that misled the agent (counted against them even when not reported as used).
    :param refresh: rebuild the recall prior's cache (:func:`refresh_prior`) now.
    :raises MtlgitError: for an unknown receipt, an item that is not one of its, or a note holding a secret.
    """
    if outcome not in OUTCOMES:
        raise MtlgitError(f"--outcome must be one of {', '.join(OUTCOMES)}")
    receipt = find_receipt(repo, receipt_ref)
    event: dict[str, Any] = {
        "v": 1,
        "id": "oc-" + new_ulid(),
        "at": now(),
        "receipt": receipt["id"],
        "outcome": outcome,
        "memories": list(receipt.get("memories") or []),
        "used": _resolve_items(receipt, used, "used"),
        "hurt": _resolve_items(receipt, hurt, "hurt"),
        "tool": tool if tool in TOOLS else "cli",
    }
    if note:
        found = find_secrets(note)
        if found:
            raise MtlgitError(f"--note holds {found[0].describe()}: the ledger never stores one; remove it")
        event["note"] = note[:2000]
    check_event(event)
    append_event(repo, "outcomes", event)
    if refresh:
        refresh_prior(repo)
    return event


def refresh_prior(repo: Repo) -> None:
    """Tally the outcomes and rebuild the recall prior's cache now, after outcomes were added: the next recall
    reads the cache instead of paying for the tally (about as long as importing numpy at 20k outcomes)."""
    try:
        recall_prior(repo)
    except MtlgitError:
        pass  # a bad recall.feedback_weight: the next recall reports it


# --- figures -----------------------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when there is no observation."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Usefulness:
    """What the ledger knows about one memory."""

    memory_id: str
    recalled: int = 0
    reported: int = 0  # receipts with an outcome that recalled it
    used: int = 0
    used_success: int = 0
    used_failure: int = 0
    unused: int = 0
    unused_success: int = 0
    unused_failure: int = 0
    hurt: int = 0

    @property
    def used_interval(self) -> tuple[float, float]:
        return wilson(self.used_success, self.used_success + self.used_failure)

    @property
    def unused_interval(self) -> tuple[float, float]:
        return wilson(self.unused_success, self.unused_success + self.unused_failure)

    @property
    def verdict(self) -> str:
        """helps | hurts | no clear difference | too little evidence"""
        used_n = self.used_success + self.used_failure
        unused_n = self.unused_success + self.unused_failure
        if used_n < MIN_EVIDENCE or unused_n < MIN_EVIDENCE:
            return "too little evidence"
        (used_lo, used_hi), (unused_lo, unused_hi) = self.used_interval, self.unused_interval
        if used_lo > unused_hi:
            return "helps"
        if used_hi < unused_lo:
            return "hurts"
        return "no clear difference"

    @property
    def harmful(self) -> bool:
        """Evidence of harm: reported as misleading twice, failing repeatedly when used (3+ failures and a
        success rate whose 95% upper bound is under 50%), or a "hurts" verdict."""
        used_n = self.used_success + self.used_failure
        failing = self.used_failure >= 3 and wilson(self.used_success, used_n)[1] < 0.5
        return self.hurt >= 2 or failing or self.verdict == "hurts"

    def to_json(self) -> dict[str, Any]:
        def rate(successes: int, failures: int) -> dict[str, Any]:
            n = successes + failures
            low, high = wilson(successes, n)
            return {
                "n": n,
                "successes": successes,
                "rate": round(successes / n, 4) if n else None,
                "interval95": [round(low, 4), round(high, 4)],
            }

        return {
            "id": self.memory_id,
            "recalled": self.recalled,
            "with_outcome": self.reported,
            "used": self.used,
            "hurt": self.hurt,
            "success_when_used": rate(self.used_success, self.used_failure),
            "success_when_not_used": rate(self.unused_success, self.unused_failure),
            "verdict": self.verdict,
            "harmful": self.harmful,
        }


@dataclass
class LedgerFigures:
    memories: dict[str, Usefulness] = field(default_factory=dict)
    receipts: int = 0
    outcomes: int = 0
    unreadable_lines: int = 0

    def get(self, memory_id: str) -> Usefulness:
        return self.memories.get(memory_id) or Usefulness(memory_id)


# Outcome lines as mtlgit writes them (keys in this order): read with one regular expression, ~10x faster
# than a JSON parser; any other line is parsed as JSON.
_OUTCOME_LINE = re.compile(
    rb'^\{"v":1,"id":"(oc-[0-9A-Z]{26})","at":"([^"]*)","receipt":"(rc-[0-9A-Z]{26})",'
    rb'"outcome":"(success|failure|unknown)","memories":\[([^\]]*)\],"used":\[([^\]]*)\],"hurt":\[([^\]]*)\]',
    re.MULTILINE,
)
# Per memory: reported, used, used_success, used_failure, unused, unused_success, unused_failure, hurt.
_FIELDS = ("reported", "used", "used_success", "used_failure", "unused", "unused_success", "unused_failure", "hurt")


def _ids(field: bytes) -> list[str]:
    return field.decode("utf-8").replace('"', "").split(",") if field else []


_Outcome = tuple[str, str, str, list[str], set[str], set[str]]


def _latest_outcomes(data: bytes, figures: LedgerFigures) -> dict[str, _Outcome]:
    """The latest outcome of each receipt: (at, id, outcome, memories, used, hurt)."""
    latest: dict[str, _Outcome] = {}
    matched = 0
    for m in _OUTCOME_LINE.finditer(data):
        matched += 1
        event = (m[2].decode(), m[1].decode(), m[4].decode(), _ids(m[5]), set(_ids(m[6])), set(_ids(m[7])))
        receipt = m[3].decode()
        if receipt not in latest or event[:2] > latest[receipt][:2]:
            latest[receipt] = event
    if matched != data.count(b"\n"):
        for line in data.split(b"\n"):
            if not line.strip() or _OUTCOME_LINE.match(line):
                continue
            parsed = _parse_line(line)
            if parsed is None or not isinstance(parsed.get("receipt"), str) or parsed.get("outcome") not in OUTCOMES:
                figures.unreadable_lines += 1
                continue
            event = (
                str(parsed.get("at", "")),
                parsed["id"],
                parsed["outcome"],
                [str(i) for i in parsed.get("memories") or []],
                set(parsed.get("used") or ()),
                set(parsed.get("hurt") or ()),
            )
            if parsed["receipt"] not in latest or event[:2] > latest[parsed["receipt"]][:2]:
                latest[parsed["receipt"]] = event
    return latest


def _tally(data: bytes, figures: LedgerFigures) -> dict[str, list[int]]:
    tallies: dict[str, list[int]] = {}
    for _at, _id, result, memories, used, hurt in _latest_outcomes(data, figures).values():
        figures.outcomes += 1
        success, failure = result == "success", result == "failure"
        for memory_id in memories:
            t = tallies.get(memory_id)
            if t is None:
                t = tallies[memory_id] = [0] * len(_FIELDS)
            t[0] += 1
            if memory_id in hurt:
                t[7] += 1
            if memory_id in used:
                t[1] += 1
                t[2] += success
                t[3] += failure
            elif memory_id not in hurt:
                t[4] += 1
                t[5] += success
                t[6] += failure
    return tallies


def _load_tallies(repo: Repo, figures: LedgerFigures) -> dict[str, list[int]]:
    """Every memory's outcome counts (in :data:`_FIELDS` order), kept in a cache while no outcomes file changed:
    outcomes come far less often than recalls, so the recall prior nearly always reads the cache."""
    files = event_files(repo, "outcomes")
    if not files:
        return {}
    key = []
    for path in files:
        stat = path.stat()
        key.append([path.name, stat.st_size, stat.st_mtime_ns])
    cache_path = ledger_dir(repo) / "outcomes.json"
    try:
        cache = json.loads(cache_path.read_bytes())
        if cache["key"] != key:
            raise ValueError("changed")
        figures.outcomes, figures.unreadable_lines = cache["outcomes"], cache["bad"]
        return cache["tallies"]  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError, TypeError):
        data = b"".join(path.read_bytes().rstrip(b"\n") + b"\n" for path in files)
        tallies = _tally(data, figures)
        try:
            write_json(
                cache_path,
                {"key": key, "tallies": tallies, "outcomes": figures.outcomes, "bad": figures.unreadable_lines},
            )
        except OSError:
            pass  # only a cache: a read-only checkout or a full disk tallies the outcomes each time
        return tallies


def _outcome_tallies(repo: Repo, figures: LedgerFigures) -> None:
    for memory_id, counts in _load_tallies(repo, figures).items():
        figures.memories[memory_id] = Usefulness(memory_id, 0, *counts)


def _receipt_counts(repo: Repo, figures: LedgerFigures) -> None:
    """How often each memory was recalled: counted from the receipts files, carried over between calls in a
    small cache (files only grow, so only their new bytes are read)."""
    cache_path = ledger_dir(repo) / "recalled.json"
    try:
        cache = json.loads(cache_path.read_bytes())
        offsets: dict[str, int] = cache["offsets"]
        counts: Counter[str] = Counter(cache["counts"])
        receipts = int(cache["receipts"])
    except (OSError, ValueError, KeyError, TypeError):
        offsets, counts, receipts = {}, Counter(), 0
    changed = False
    for path in event_files(repo, "receipts"):
        size = path.stat().st_size
        start = offsets.get(path.name, 0)
        if size == start:
            continue
        if size < start:  # the file was replaced (not by mtlgit): count everything again
            return _receipt_counts_fresh(repo, figures, cache_path)
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(size - start)
        end = data.rfind(b"\n") + 1  # a line still being written is counted next time
        new_receipts, new_counts = _count_memories(data[:end])
        receipts += new_receipts
        counts.update(new_counts)
        offsets[path.name] = start + end
        changed = True
    if changed:
        write_json(cache_path, {"offsets": offsets, "counts": counts, "receipts": receipts})
    figures.receipts = receipts
    for memory_id, n in counts.items():
        entry = figures.memories.get(memory_id)
        if entry is None:
            entry = figures.memories[memory_id] = Usefulness(memory_id)
        entry.recalled = n
    return None


def _receipt_counts_fresh(repo: Repo, figures: LedgerFigures, cache_path: Path) -> None:
    cache_path.unlink(missing_ok=True)
    _receipt_counts(repo, figures)


_MEMORIES_FIELD = re.compile(rb'"memories":\[([^\]]*)\]')


def _count_memories(data: bytes) -> tuple[int, Counter[str]]:
    """Receipts and memory-id occurrences in whole receipt lines. mtlgit writes the ids as plain JSON strings
    checked against an id pattern, so a regular expression reads them ~10x faster than a JSON parser."""
    fields = _MEMORIES_FIELD.findall(data)
    joined = b",".join(f for f in fields if f)
    ids = joined.decode("utf-8").replace('"', "").split(",") if joined else []
    return len(fields), Counter(ids)


def outcome_figures(data: bytes) -> LedgerFigures:
    """Usefulness from outcome lines held in memory (as the outcomes files hold them), without recall counts."""
    result = LedgerFigures()
    for memory_id, counts in _tally(data, result).items():
        result.memories[memory_id] = Usefulness(memory_id, 0, *counts)
    return result


def figures(repo: Repo) -> LedgerFigures:
    """Every memory's usefulness from the whole ledger held in this clone."""
    result = LedgerFigures()
    _outcome_tallies(repo, result)
    _receipt_counts(repo, result)
    return result


# --- the recall prior --------------------------------------------------------------------------------------


def prior_values(figures: LedgerFigures, memory_ids: Sequence[str], weight: float) -> np.ndarray:
    """The prior of each memory from given figures: see :func:`prior`."""
    tallies = {i: [getattr(u, name) for name in _FIELDS] for i, u in figures.memories.items()}
    return _prior(tallies, memory_ids, weight)


def _prior_table(tallies: dict[str, list[int]], weight: float) -> tuple[list[str], np.ndarray]:
    """Every memory with outcomes, and its prior (see :func:`prior`)."""
    import numpy as np

    ids = list(tallies)
    if weight <= 0 or not ids:
        return ids, np.zeros(len(ids), dtype=np.float32)
    # Columns in _FIELDS order: reported, used, used_success, used_failure, unused, unused_success,
    # unused_failure, hurt.
    t = np.array(list(tallies.values()), dtype=np.float64)
    successes, failures = float(t[:, 2].sum() + t[:, 5].sum()), float(t[:, 3].sum() + t[:, 6].sum())
    base = (successes + 1.0) / (successes + failures + 2.0)
    # A report that the memory misled counts as a failure when used.
    used_rate = (t[:, 2] + PRIOR_PSEUDO * base) / (t[:, 2] + t[:, 3] + t[:, 7] + PRIOR_PSEUDO)
    unused_rate = (t[:, 5] + PRIOR_PSEUDO * base) / (t[:, 5] + t[:, 6] + PRIOR_PSEUDO)
    values = weight * np.clip((used_rate - unused_rate) / PRIOR_FULL_EFFECT, -1.0, 1.0)
    return ids, values.astype(np.float32)


def _prior(tallies: dict[str, list[int]], memory_ids: Sequence[str], weight: float) -> np.ndarray:
    import numpy as np

    ids, values = _prior_table(tallies, weight)
    position = {memory_id: n for n, memory_id in enumerate(ids)}
    out = np.zeros(len(memory_ids), dtype=np.float32)
    for n, memory_id in enumerate(memory_ids):
        if memory_id in position:
            out[n] = values[position[memory_id]]
    return out


def prior(memory_ids: Sequence[str], repo: Repo | None = None, weight: float | None = None) -> np.ndarray:
    """A bounded score adjustment for each memory from its outcomes, in standard deviations of recall's fused
    score (recall multiplies it by the spread of the candidates' scores before adding it).

    Each memory's success rate when used is compared with its rate when recalled but not used (both shrunk
    towards the pool's success rate by :data:`PRIOR_PSEUDO` pseudo-outcomes); the difference, scaled so that
    :data:`PRIOR_FULL_EFFECT` reaches the bound, is clipped to ``[-weight, +weight]``. A memory without
    outcomes gets 0. The default bound, 0.5, can move a memory a few places, never from the bottom of a pool
    to the top.

    :param weight: the bound; default ``recall.feedback_weight`` of ``.mtlgit.yaml`` (0 turns the prior off).
    :return: float32 array aligned with ``memory_ids``.
    """
    repo = repo or find_repo()
    if weight is None:
        weight = settings(repo).feedback_weight
    return _prior(_load_tallies(repo, LedgerFigures()) if weight > 0 else {}, memory_ids, weight)


def prior_table(repo: Repo, weight: float) -> tuple[list[str], np.ndarray]:
    """Every memory with outcomes and its prior at ``weight`` (for :func:`mtlgit.receipts.recall_prior`)."""
    return _prior_table(_load_tallies(repo, LedgerFigures()), weight)


# --- lint, review, prompt extract and transcripts ----------------------------------------------------------


def harm_problems(repo: Repo, memories: Iterable[Any]) -> list[Problem]:
    """Lint warnings (code ``harm``) for memories with evidence of harm: candidates to retire or rewrite."""
    if not event_files(repo, "outcomes"):
        return []
    known = figures(repo)
    problems = []
    for memory in memories:
        u = known.memories.get(memory.id)
        if u is not None and u.harmful:
            problems.append(
                Problem(
                    memory.path,
                    0,
                    "warning",
                    "harm",
                    f"the outcome ledger shows harm ({describe(u)}): rewrite or retire it (`mtlgit retire`)",
                )
            )
    return problems


def describe(u: Usefulness) -> str:
    """One line of figures: recalled, used, hurt, success when used and not, the verdict."""

    def rate(successes: int, failures: int) -> str:
        n = successes + failures
        if not n:
            return "-"
        low, high = wilson(successes, n)
        return f"{successes}/{n} [{low:.2f}-{high:.2f}]"

    hurt = f", reported misleading {u.hurt}x" if u.hurt else ""
    return (
        f"recalled {u.recalled}, used {u.used}{hurt}; success when used {rate(u.used_success, u.used_failure)}, "
        f"when not used {rate(u.unused_success, u.unused_failure)}: {u.verdict}"
    )


def review_section(repo: Repo, memory_ids: Sequence[tuple[str, str]]) -> str:
    """Markdown figures for the memories a branch changes (``(id, title)`` pairs); empty when none has any."""
    if not memory_ids or not (event_files(repo, "outcomes") or event_files(repo, "receipts")):
        return ""
    known = figures(repo)
    lines = []
    for memory_id, title in memory_ids:
        u = known.memories.get(memory_id)
        if u is not None:
            flag = " ⚠️ evidence of harm" if u.harmful else ""
            lines.append(f"- **{title}**: {describe(u)}{flag}")
    if not lines:
        return ""
    return "### Outcome ledger\n\n" + "\n".join(lines) + "\n"


def usefulness_json(repo: Repo, memory_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The figures of the given memories that the ledger has any evidence for (for ``review --json``)."""
    if not memory_ids or not (event_files(repo, "outcomes") or event_files(repo, "receipts")):
        return []
    known = figures(repo)
    return [known.memories[i].to_json() for i in memory_ids if i in known.memories]


def extract_request(repo: Repo, receipt_ref: str, outcome: str) -> str:
    """What ``prompt extract --receipt`` adds: report which recalled items were used, with the memories."""
    receipt = find_receipt(repo, receipt_ref)
    count = len(receipt.get("memories") or [])
    answer = {"receipt": receipt["id"], "outcome": outcome, "used": [1], "hurt": [], "memories": ["..."]}
    return (
        f"\nThis attempt was given {count} recalled memory item(s) (receipt {receipt['id']}). Also say which you "
        'used (the N of each "Using Memory Item N") and which misled you: answer with one JSON object '
        'instead of the list, the list going under "memories":\n\n' + json.dumps(answer) + "\n"
    )


def record_extract_answer(repo: Repo, text: str) -> str | None:
    """Record the outcome in an extraction answer (a JSON object with ``receipt``); return its id, or None
    when the answer carries no receipt."""
    try:
        data = json.loads(text.strip())
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("receipt"), str):
        return None
    used, hurt = data.get("used") or [], data.get("hurt") or []
    if not isinstance(used, list) or not isinstance(hurt, list):
        raise MtlgitError("'used' and 'hurt' must be lists of Memory Item numbers")
    outcome = data.get("outcome", "unknown")
    event = record_outcome(repo, data["receipt"], str(outcome), used, hurt, tool="extract")
    return str(event["id"])


def transcript_uses(lines: Iterable[str]) -> dict[str, list[int]]:
    """The items an agent said it used, by receipt, from a Claude Code transcript (JSON lines).

    A receipt id anywhere in the transcript (a hook's added context, a tool's output) opens its items; each
    "Using Memory Item N" the assistant writes afterwards counts for the latest receipt. Only the assistant's
    own text is read for uses: the recall's preamble quotes the phrase as an example.
    """
    uses: dict[str, list[int]] = {}
    current: str | None = None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        assistant = entry.get("type") == "assistant"
        for text in _strings(entry.get("message", entry), assistant):
            is_own, value = text
            for receipt in _RECEIPT_RE.findall(value):
                current = receipt
                uses.setdefault(receipt, [])
            if is_own and current is not None:
                for match in _USING_RE.finditer(value):
                    for number in re.findall(r"\d+", match.group(1)):
                        if int(number) not in uses[current]:
                            uses[current].append(int(number))
    return uses


def _strings(value: Any, assistant: bool, own: bool = True) -> Iterable[tuple[bool, str]]:
    """Every string of a transcript entry, marked when it is the assistant's own text (not a tool's output)."""
    if isinstance(value, str):
        yield assistant and own, value
    elif isinstance(value, dict):
        inner = own and value.get("type") not in ("tool_result", "tool_use")
        for item in value.values():
            yield from _strings(item, assistant, inner)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, assistant, own)


def record_transcript(repo: Repo, lines: Iterable[str], outcome: str) -> list[dict[str, Any]]:
    """Record an outcome for every receipt of this clone's ledger a transcript mentions; return the events."""
    events = []
    for receipt, numbers in transcript_uses(lines).items():
        try:
            memories = find_receipt(repo, receipt).get("memories") or []
        except MtlgitError:
            continue  # a receipt of another clone, not synced here
        valid = [n for n in numbers if 1 <= n <= len(memories)]
        events.append(record_outcome(repo, receipt, outcome, valid, tool="transcript", refresh=False))
    if events:
        refresh_prior(repo)
    return events
