"""``mtlgit mcp``: a Model Context Protocol server over stdio (the official ``mcp`` SDK, an optional extra).

Tools: ``recall`` (the Memory Item block as text, the results as structured content), ``add_memories`` (the
JSON of ``mtlgit add --json``, through the same checks), ``lint`` and ``show``. The server keeps the index and
the model loaded, so a recall costs only its scoring. Before each recall it checks the configuration, every
folder and recently written files (new, deleted or renamed memories are seen at once); a background thread
re-checks every file's stat each second, so an edit in place is seen within a second, without a restart.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent

from mtlgit.errors import MtlgitError

INSTRUCTIONS = (
    "mtlgit recalls lessons that agents learned on earlier tasks (this repository's memories and its team's "
    "pools). Call `recall` with a description of the task before you start; use an item only if it fits, say "
    "which, and verify it. After the task, add what you learned with `add_memories` (general lessons, no file "
    "names; see `mtlgit prompt extract`)."
)
CHECK_SECONDS = 1.0


def build_server(start: Path | None = None) -> MCPServer:
    """An MCP server bound to the repository containing ``start``."""
    from mtlgit import render
    from mtlgit.recall import MODES, Filters, Recaller
    from mtlgit.schema import FORMATS

    recaller = Recaller(start)
    recaller.snapshot()
    server = MCPServer("mtlgit", instructions=INSTRUCTIONS)
    with_receipt = _ledger_tools(server, recaller)

    def guarded(call: Any) -> Any:
        try:
            return call()
        except MtlgitError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description="Recall the memories most relevant to a task (hybrid BM25 + embedding, top k).")
    def recall(
        query: str,
        k: int = 3,
        mode: str = "hybrid",
        formats: list[str] | None = None,
        domains: list[str] | None = None,
        exclude_domains: list[str] | None = None,
        tags: list[str] | None = None,
        pools: list[str] | None = None,
        include_retired: bool = False,
        min_confidence: float | None = None,
    ) -> CallToolResult:
        if not query.strip():
            raise ToolError("query is empty: describe the task")
        if not 1 <= k <= 100:
            raise ToolError("k must be between 1 and 100")
        if mode not in MODES:
            raise ToolError(f"mode must be one of {', '.join(MODES)}")
        if min_confidence is not None and not 0 <= min_confidence <= 1:
            raise ToolError("min_confidence must be between 0 and 1 (0 always returns k memories)")
        bad = [f for f in formats or [] if f not in FORMATS]
        if bad:
            raise ToolError(f"unknown format {', '.join(bad)}: one of {', '.join(FORMATS)}")
        filters = Filters(
            formats=formats or (),
            domains=domains or (),
            exclude_domains=exclude_domains or (),
            tags=tags or (),
            include_retired=include_retired,
        )
        result = guarded(
            lambda: recaller.recall(
                query, k, mode, filters, pools=pools or None, quick=True, min_confidence=min_confidence
            )
        )
        text = render.prompt(result.hits) or f"No memory recalled: {result.reason or 'no memory matched'}."
        data, receipt_text = with_receipt(result)
        return CallToolResult(content=[TextContent(type="text", text=text + receipt_text)], structured_content=data)

    @server.tool(
        description="Add memory items (objects with title, description, content, format, domains, tags, outcome). "
        "Each is validated, checked for secrets and near-duplicates, and written; rejected ones come back with "
        "their reasons."
    )
    def add_memories(items: list[dict[str, Any]], force: bool = False) -> dict[str, Any]:
        from mtlgit.intake import add_items
        from mtlgit.store import Pool

        results = guarded(lambda: add_items(Pool.open(recaller.repo.root), items, force=force))
        added = [r for r in results if r.memory is not None]
        if added:
            recaller.snapshot()
        return {"added": len(added), "rejected": len(results) - len(added), "items": [r.to_json() for r in results]}

    @server.tool(
        description="Lint the memory files (all, or the given paths relative to the repository: files or folders): "
        "errors and warnings. A path that does not exist or is outside the memories folder is an error."
    )
    def lint(paths: list[str] | None = None) -> dict[str, Any]:
        from mtlgit.lint import LintReport, lint_pool
        from mtlgit.store import Pool

        pool = guarded(lambda: Pool.open(recaller.repo.root))
        wanted = [pool.root / p for p in paths] if paths else None
        report: LintReport = guarded(lambda: lint_pool(pool, wanted))
        return report.to_json()

    @server.tool(description="Show one memory by id, id prefix or path (of this repository or a synced pool).")
    def show(id: str) -> dict[str, Any]:
        from mtlgit.pools import lookup
        from mtlgit.store import Pool

        memory = guarded(lambda: lookup(Pool.open(recaller.repo.root), id))
        return dict(memory.to_json())

    watcher = threading.Thread(target=_watch, args=(recaller,), daemon=True, name="mtlgit-freshness")
    watcher.start()
    return server


def _ledger_tools(server: MCPServer, recaller: Any) -> Any:
    """Register ``report_outcome``; return what records a recall's receipt: (structured content, text to add)."""
    from mtlgit import ledger

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

    def with_receipt(result: Any) -> tuple[dict[str, Any], str]:
        receipt = ledger.record_recall(result, tool="mcp", repo=recaller.repo)
        return {**result.to_json(), "receipt": receipt}, ("\n\n" + ledger.receipt_line(receipt) if receipt else "")

    return with_receipt


def _watch(recaller: Any) -> None:
    """Re-check every file's stat once a second and refresh the index when one changed."""
    import time

    from mtlgit.hooks import log

    while True:
        time.sleep(CHECK_SECONDS)
        try:
            recaller.snapshot(quick=False)
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive a bad moment (a file mid-write)
            log(recaller.repo, f"mcp: freshness check failed: {exc}")


def serve(start: Path | None = None) -> None:
    build_server(start).run("stdio")
