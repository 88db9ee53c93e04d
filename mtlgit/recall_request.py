"""One recall request, built the same way by the command line (click and its argparse fast path) and by the MCP
server: the options are checked here, once, with the same messages everywhere, and :func:`execute` runs it.

The prompt budget lives here too. Whole items are kept in rank order while the ``--prompt`` block stays within
the budget, so ``--prompt``, JSON and MCP return the same items; what is left out is reported, never dropped
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtlgit import render
from mtlgit.errors import MtlgitError
from mtlgit.recall import Filters, Hit, Recaller, RecallResult
from mtlgit.rules import FORMATS, MODES, SCOPES

K_MAX = 1000
# Estimated tokens of the whole --prompt block, preamble included (~175). A starter memory takes 150-200, so
# the default k of 3 fits with room to spare and up to ~10 fit; an imported style guide of 2-10k tokens does
# not, and a block never grows past ~8 KB unless asked.
DEFAULT_BUDGET = 2000

# What each checked option must be: the one text of every message about it (CLI, MCP schema errors, library).
EXPECTED = {
    "k": f"a whole number from 1 to {K_MAX}",
    "mode": f"one of {', '.join(MODES)}",
    "min_confidence": "a number from 0 to 1 (0 keeps all k)",
    "budget": "a whole number of tokens, 0 or more (0: no cap)",
    "formats": f"a list of names from {', '.join(FORMATS)}",
    "scopes": f"a list of names from {', '.join(SCOPES)}",
}


class RequestError(MtlgitError):
    """An option of a recall request is out of its range; ``field`` is its name in the library and MCP."""

    def __init__(self, name: str, value: object) -> None:
        self.field = name
        self.problem = f"must be {EXPECTED[name]}, not {value!r}"
        super().__init__(f"{name} {self.problem}")


# eq, repr and frozen would each cost the recall path the generation of more methods at import (~1-2 ms).
@dataclass(eq=False, repr=False)
class RecallRequest:
    """What to recall and how. ``None`` means "as configured" (``recall.k``, ``recall.mode``,
    ``recall.min_confidence``, ``recall.budget``).

    :raises RequestError: on construction, when an option is out of its range.
    """

    query: str = ""
    k: int | None = None
    mode: str | None = None
    formats: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    include_retired: bool = False
    include_trajectories: bool = False
    pools: tuple[str, ...] = ()  # empty: every pool; "local" is this repository's own memories
    rev: str | None = None
    reviewed: bool = False
    min_confidence: float | None = None
    budget: int | None = None
    explain: bool = False

    def __post_init__(self) -> None:
        for name in ("formats", "domains", "exclude_domains", "tags", "scopes", "pools"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.k is not None and (not _whole(self.k) or not 1 <= self.k <= K_MAX):
            raise RequestError("k", self.k)
        if self.mode is not None and self.mode not in MODES:
            raise RequestError("mode", self.mode)
        bar = self.min_confidence
        if bar is not None and (isinstance(bar, bool) or not isinstance(bar, int | float) or not 0 <= bar <= 1):
            raise RequestError("min_confidence", bar)  # NaN fails the range test too
        if self.budget is not None and (not _whole(self.budget) or self.budget < 0):
            raise RequestError("budget", self.budget)
        for name, allowed in (("formats", FORMATS), ("scopes", SCOPES)):
            if any(value not in allowed for value in getattr(self, name)):
                raise RequestError(name, list(getattr(self, name)))

    def with_query(self, query: str) -> RecallRequest:
        return replace(self, query=query)

    def filters(self) -> Filters:
        return Filters(
            formats=self.formats,
            domains=self.domains,
            exclude_domains=self.exclude_domains,
            tags=self.tags,
            scopes=self.scopes,
            include_retired=self.include_retired,
            include_trajectories=self.include_trajectories,
        )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Budget:
    """How a recall's items were fitted to the prompt budget (estimated tokens, see :func:`render.tokens`)."""

    def __init__(self, tokens: int, used: int, left_out: list[dict[str, Any]]) -> None:
        self.tokens = tokens  # the budget; 0: no cap
        self.used = used  # the block of the items kept
        self.left_out = left_out  # rank, id, title, tokens of each item left out

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "used": self.used, "left_out": self.left_out}

    def note(self, option: str = "--budget") -> str | None:
        """One line saying what the budget left out, or None; ``option`` is how the caller sets the budget."""
        if not self.left_out:
            return None
        ranks = [item["rank"] for item in self.left_out]
        which = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}"
        more = sum(item["tokens"] for item in self.left_out)
        return (
            f"the prompt budget of {self.tokens} tokens left out {len(ranks)} memor{'y' if len(ranks) == 1 else 'ies'} "
            f"({which}, ~{more} tokens): raise {option} or recall.budget (0: no cap), or ask for fewer (k)"
        )


def execute(request: RecallRequest, recaller: Recaller, quick: bool = False, budgeted: bool = True) -> Recalled:
    """Run ``request``; with ``budgeted``, keep only the leading items that fit the prompt budget.

    :raises MtlgitError: when the query is empty, and as :meth:`Recaller.recall` does.
    """
    if not request.query.strip():
        raise MtlgitError("the query is empty: describe the task to recall memories for")
    result = recaller.recall(
        request.query,
        request.k,
        request.mode,
        request.filters(),
        rev=request.rev,
        reviewed=request.reviewed,
        pools=request.pools or None,
        quick=quick,
        min_confidence=request.min_confidence,
        explain=request.explain,
    )
    if not budgeted:
        return Recalled(request, result, None)
    limit = request.budget if request.budget is not None else budget_for(result.snapshot.manifest, recaller.repo.root)
    kept, used, left = render.fit(result.hits, limit)
    budget = Budget(limit, used, [_left_out(hit, tokens) for hit, tokens in left])
    result.hits = kept
    return Recalled(request, result, budget)


class Recalled:
    def __init__(self, request: RecallRequest, result: RecallResult, budget: Budget | None) -> None:
        self.request = request
        self.result = result
        self.budget = budget  # None: not fitted to a budget (text and --paths output)

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``recall --json`` and of MCP's structured content (a receipt is added by the caller)."""
        data = self.result.to_json()
        if self.budget is not None:
            data["budget"] = self.budget.to_json()
        if self.request.explain:
            for item, hit in zip(data["results"], self.result.hits, strict=True):
                item["explain"] = hit.explain()
        return data


def budget_for(manifest: Any, root: Path) -> int:
    """The configured ``recall.budget``, which the index's manifest keeps, else :data:`DEFAULT_BUDGET`.

    An index written before the key existed has no such entry: the configuration is then parsed only when its
    text names a budget, since parsing YAML would cost every recall ~60 ms of imports until the next refresh.
    """
    if "budget" not in manifest:
        try:
            # config.CONFIG_NAME: importing mtlgit.config would import the YAML parser this avoids.
            text = (root / ".mtlgit.yaml").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if "budget" not in text:
            return DEFAULT_BUDGET
        from mtlgit.config import load_config

        configured = load_config(root).budget
    else:
        configured = manifest["budget"]
    return DEFAULT_BUDGET if configured is None else int(configured)


def _left_out(hit: Hit, tokens: int) -> dict[str, Any]:
    return {"rank": hit.rank, "id": hit.memory.get("id"), "title": hit.memory.get("title"), "tokens": tokens}
