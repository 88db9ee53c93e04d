"""``mtlgit mcp``: a Model Context Protocol server over stdio (the official ``mcp`` SDK, an optional extra).

Tools: ``recall`` (the Memory Item block as text, the results as structured content), ``add_memories`` (the
JSON of ``mtlgit add --json``, through the same checks), ``lint`` and ``show``. The server keeps the index and
the model loaded, so a recall costs only its scoring. Each recall first checks freshness exactly as
``mtlgit recall`` does (``recall.freshness``: below 5,000 files every stat, from 5,000 files the worktree's
inotify watcher, which says what changed in ~1 ms at any size): every edit, in place or not, is seen by the
next call, and nothing runs between calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mtlgit import ledger, render
from mtlgit.errors import MtlgitError
from mtlgit.intake import add_items
from mtlgit.lint import LintJson, LintReport, lint_pool
from mtlgit.pools import lookup
from mtlgit.recall import Recaller
from mtlgit.recall_request import EXPECTED, K_MAX, RecallRequest, execute
from mtlgit.store import Pool

# The enums of the tool schema; a test keeps them equal to mtlgit.rules.MODES and FORMATS.
Mode = Literal["hybrid", "bm25", "dense"]
Format = Literal["insight", "workflow", "summary", "trajectory"]

INSTRUCTIONS = (
    "mtlgit recalls lessons that agents learned on earlier tasks (this repository's memories and its team's "
    "pools). Call `recall` with a description of the task before you start; use an item only if it fits, say "
    "which, and verify it. After the task, add what you learned with `add_memories` (general lessons, no file "
    "names; see `mtlgit prompt extract`)."
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RecalledMemory(_Open):
    """One recalled memory: its rank and scores, every field of the memory, where it lives."""

    rank: int
    score: float
    confidence: float = Field(description="how likely the memory applies to the task (0-1)")
    id: str
    title: str
    content: str
    format: str
    path: str
    pool: str = Field(description="'local' (this repository) or the name of a configured pool")
    notes: list[str] = Field(description="warnings to heed before using the memory (e.g. possibly stale)")


class LeftOut(BaseModel):
    rank: int
    id: str | None
    title: str | None
    tokens: int


class BudgetReport(BaseModel):
    tokens: int = Field(description="the prompt budget in estimated tokens (0: no cap)")
    used: int = Field(description="estimated tokens of the memory block returned")
    left_out: list[LeftOut] = Field(description="memories recalled but left out to stay within the budget")


class RecallOutput(_Open):
    """The structured content of ``recall``: the JSON of ``mtlgit recall --json``."""

    query: str
    mode: str
    k: int
    min_confidence: float
    results: list[RecalledMemory]
    reason: str | None = Field(description="why nothing was recalled, when nothing was")
    pool_size: int
    unreadable_files: int
    notes: list[str]
    budget: BudgetReport
    receipt: str | None = Field(description="pass it to report_outcome when the task is done")


class _Server(MCPServer):
    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """As the SDK, but an argument of the wrong shape is told in one line naming the field and the fix,
        not as pydantic's report."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            tool = self._tool_manager.get_tool(name)
            schema = tool.parameters if tool is not None else {}
            raise ToolError(f"Error executing tool {name}: {argument_problem(cause, schema)}") from None


def argument_problem(error: ValidationError, schema: dict[str, Any]) -> str:
    """One line for the first argument pydantic refused: its name, what it must be, what it was."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "the arguments"
    expected = FIELD_HINTS.get(name) or EXPECTED.get(name)
    if expected is None:
        expected = _expected(schema.get("properties", {}).get(name, {}))
    if first["type"] == "missing":
        return f"{name} is missing: give {expected}"
    given = repr(first["input"])
    given = given if len(given) <= 60 else given[:57] + "..."
    return f"{name} must be {expected}, not {given}"


FIELD_HINTS = {
    "items": 'a list of memory objects, e.g. [{"title": "...", "description": "...", "content": "..."}] '
    "(also format, domains, tags, outcome)",
    "query": "the task, described in words",
}


def _expected(schema: dict[str, Any]) -> str:
    """What a JSON schema asks for, in words ("a list of strings", "one of a, b", "true or false")."""
    kinds = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    words = []
    for kind in kinds:
        if "enum" in kind:
            words.append("one of " + ", ".join(str(v) for v in kind["enum"]))
        elif kind.get("type") == "array" and "enum" in kind.get("items", {}):
            words.append("a list of names from " + ", ".join(str(v) for v in kind["items"]["enum"]))
        elif kind.get("type") == "array":
            words.append("a list of " + _plural(_expected(kind.get("items", {}))))
        else:
            words.append(_TYPE_WORDS.get(str(kind.get("type")), "a value"))
    return " or ".join(words) or "a value"


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
}


def _plural(words: str) -> str:
    return " or ".join(w.removeprefix("a ").removeprefix("an ") + "s" for w in words.split(" or "))


def build_server(start: Path | None = None) -> MCPServer:
    """An MCP server bound to the repository containing ``start``."""
    recaller = Recaller(start)
    recaller.snapshot()
    server = _Server("mtlgit", instructions=INSTRUCTIONS)
    with_receipt = _ledger_tools(server, recaller)

    def guarded(call: Any) -> Any:
        try:
            return call()
        except MtlgitError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        description="Recall the memories most relevant to a task (hybrid BM25 + embedding, top k): the Memory Item "
        "block to put in your prompt, whole items within the prompt budget, and the results as structured content."
    )
    def recall(
        query: Annotated[str, Field(description="the task, described in words")],
        k: Annotated[int | None, Field(ge=1, le=K_MAX, description="how many memories (default: recall.k, 3)")] = None,
        mode: Annotated[Mode | None, Field(description="retrieval mode (default: recall.mode, hybrid)")] = None,
        formats: list[Format] | None = None,
        domains: list[str] | None = None,
        exclude_domains: list[str] | None = None,
        tags: list[str] | None = None,
        pools: list[str] | None = None,
        include_retired: bool = False,
        min_confidence: Annotated[
            float | None,
            Field(ge=0, le=1, description="leave out memories less likely to apply (0 keeps k; default 0.55)"),
        ] = None,
        budget: Annotated[
            int | None,
            Field(ge=0, description="most estimated tokens of the block (default: recall.budget, 2000; 0: no cap)"),
        ] = None,
    ) -> Annotated[CallToolResult, RecallOutput]:
        request = guarded(
            lambda: RecallRequest(
                query=query,
                k=k,
                mode=mode,
                formats=tuple(formats or ()),
                domains=tuple(domains or ()),
                exclude_domains=tuple(exclude_domains or ()),
                tags=tuple(tags or ()),
                pools=tuple(pools or ()),
                include_retired=include_retired,
                min_confidence=min_confidence,
                budget=budget,
            )
        )
        recalled = guarded(lambda: execute(request, recaller))
        result = recalled.result
        left_out = recalled.budget.note("budget") if recalled.budget is not None else None
        why = result.reason or left_out or "no memory matched"
        text = render.prompt(result.hits) or f"No memory recalled: {why}."
        if result.hits and left_out:
            text += f"\n\nNote: {left_out}."
        data, receipt_text = with_receipt(result, recalled.to_json())
        return CallToolResult(content=[TextContent(type="text", text=text + receipt_text)], structured_content=data)

    @server.tool(
        description="Add memory items (objects with title, description, content, format, domains, tags, outcome). "
        "Each is validated, checked for secrets and near-duplicates, and written; rejected ones come back with "
        "their reasons."
    )
    def add_memories(items: list[dict[str, Any]], force: bool = False) -> dict[str, Any]:
        results = guarded(lambda: add_items(Pool.open(recaller.repo.root), items, force=force))
        added = [r for r in results if r.memory is not None]
        if added:
            recaller.snapshot()
        return {"added": len(added), "rejected": len(results) - len(added), "items": [r.to_json() for r in results]}

    @server.tool(
        description="Lint the memory files (all, or the given paths relative to the repository: files or folders): "
        "errors and warnings. A path that does not exist or is outside the memories folder is an error."
    )
    def lint(paths: list[str] | None = None) -> LintJson:
        pool = guarded(lambda: Pool.open(recaller.repo.root))
        wanted = [pool.root / p for p in paths] if paths else None
        report: LintReport = guarded(lambda: lint_pool(pool, wanted))
        return report.to_json()

    @server.tool(description="Show one memory by id, id prefix or path (of this repository or a synced pool).")
    def show(id: str) -> dict[str, Any]:
        memory = guarded(lambda: lookup(Pool.open(recaller.repo.root), id))
        return dict(memory.to_json())

    return server


def _ledger_tools(server: MCPServer, recaller: Any) -> Any:
    """Register ``report_outcome``; return what records a recall's receipt: (structured content, text to add)."""

    @server.tool(
        description="Report how the task of a recall ended (receipt from `recall`): outcome success, failure or "
        "unknown; used and hurt: numbers N of the Memory Items used or that misled you."
    )
    def report_outcome(
        receipt: str,
        outcome: str,
        used: list[int | str] | None = None,
        hurt: list[int | str] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        try:
            event = ledger.record_outcome(recaller.repo, receipt, outcome, used or [], hurt or [], note, tool="mcp")
        except MtlgitError as exc:
            raise ToolError(str(exc)) from None
        return {key: event[key] for key in ("id", "receipt", "outcome", "used", "hurt")}

    def with_receipt(result: Any, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
        receipt = ledger.record_recall(result, tool="mcp", repo=recaller.repo)
        return {**data, "receipt": receipt}, ("\n\n" + ledger.receipt_line(receipt) if receipt else "")

    return with_receipt


def serve(start: Path | None = None) -> None:
    build_server(start).run("stdio")
