"""``mtlgit mcp``: a Model Context Protocol server over stdio (the official ``mcp`` SDK, an optional extra).

Tools: ``recall`` (the Memory Item block as text, the results as structured content), ``add_memories`` (the
JSON of ``mtlgit add --json``, through the same checks), ``lint`` and ``show``. The server keeps the index and
the model loaded, so a recall costs only its scoring. Each recall first makes sure its snapshot is fresh,
through the server's own inotify watch of the memories folder (:class:`WatchedRecaller`; ``recall.freshness``
``auto`` or ``watch``): while the watch has seen no change, that costs one ``read``; after any change, the call
checks as ``mtlgit recall`` does and refreshes. Every edit, in place or not, is seen by the next call, and
nothing runs between calls.

Per call, the server avoids the SDK's thread hops: ``recall`` runs on the event loop when the watch vouches
for the snapshot (a worker thread otherwise, for a refresh may take seconds), and stdin and stdout are read and
written on the event loop (:func:`serve`).
"""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mtlgit import ledger, render, watch
from mtlgit.errors import MtlgitError
from mtlgit.index.freshness import model_unchanged
from mtlgit.index.snapshot import Snapshot
from mtlgit.intake import add_items
from mtlgit.lint import LintJson, LintReport, lint_pool
from mtlgit.pools import lookup
from mtlgit.recall import Recaller
from mtlgit.recall_request import EXPECTED, K_MAX, Recalled, RecallRequest, execute
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


class _AfterReply:
    """Work that need not hold up an answer (appending a recall's receipt): run right after the next answer is
    written to the client, while the client reads it. Run at once where the server does not write the pipe
    itself (the SDK's own stdio streams, or no server loop at all)."""

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], None]] = deque()
        self.deferring = False

    def add(self, job: Callable[[], None]) -> None:
        if self.deferring:
            self._jobs.append(job)  # deque: a recall in a worker thread may add while the event loop runs them
        else:
            job()

    def run(self) -> None:
        while self._jobs:
            self._jobs.popleft()()


class _Server(MCPServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_reply = _AfterReply()

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


# A vouch lasts this long: then one call checks as `mtlgit recall` does, which, from 5,000 files, asks the
# worktree's watcher process and so keeps it from exiting idle (after an hour), ready for the next edit.
VOUCH_SECONDS = 1800.0


class WatchedRecaller(Recaller):
    """A recaller that keeps an inotify watch of the memories folder (:class:`mtlgit.watch.TreeWatch`) in the
    server's own process. A snapshot found fresh the usual way is vouched for with the watch's change number
    taken just before that check; while the number has not moved, the snapshot is still fresh, and the check
    is one ``read`` of the watch instead of a ``stat`` of every file (4.5 ms at 1,000 files). Any change, a
    gap in the watch (queue overflow, the folder or the configuration moved) or a watch that cannot be made
    falls back to the usual check. ``recall.freshness: stat`` and ``folders`` are kept as configured.
    """

    def __init__(self, start: Any = None) -> None:
        super().__init__(start)
        self._watch: watch.TreeWatch | None = None
        self._watched = ""  # the configured memories folder the watch was made for
        self._vouched: tuple[Snapshot, int, float] | None = None  # snapshot, watch number, when
        # add_memories runs in a worker thread while recall may run on the event loop: one check at a time.
        # Re-entrant: a recall holds it from the vouch to its answer (see vouched).
        self._lock = threading.RLock()

    def unchanged(self) -> bool:
        """Whether the watch has seen nothing since the live snapshot was found fresh (a recall is then only
        its scoring). False while another thread checks or refreshes: the event loop never waits for that."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._unchanged()
        finally:
            self._lock.release()

    @contextmanager
    def vouched(self) -> Iterator[bool]:
        """As :meth:`unchanged`, and while True the check stays held by this thread, so that a refresh in another
        thread (add_memories) cannot start between the vouch and the recall that relies on it: the recall would
        then wait for that refresh on the event loop."""
        if not self._lock.acquire(blocking=False):
            yield False
            return
        try:
            yield self._unchanged()
        finally:
            self._lock.release()

    def _unchanged(self) -> bool:
        vouched, tree = self._vouched, self._watch
        if vouched is None or tree is None:
            return False
        snapshot, seq, at = vouched
        tree.poll()
        return (
            time.monotonic() - at < VOUCH_SECONDS
            and tree.seq == seq
            and not tree.links  # an edit through a symlink's target raises no event in the tree
            and snapshot is self._snapshot
            and snapshot.folder.is_dir()  # not replaced by `mtlgit index --rebuild` in another process
            and model_unchanged(snapshot.manifest)
        )

    def snapshot(self, quick: bool = False) -> Snapshot:
        with self._lock:
            if self._unchanged():
                return cast("Snapshot", self._snapshot)
            self._vouched = None
            tree = self._watch
            seq = tree.seq if tree is not None else 0  # polled by _unchanged: taken before the check below
            found = super().snapshot(quick)
            manifest = found.manifest
            if manifest.freshness not in ("auto", "watch") or not watch.available():
                self._close_watch()
                return found
            if tree is None or tree.broken_at or self._watched != manifest.memories:
                # No watch yet, or one with a gap (folders made then may be unwatched): a new one, armed after
                # this check, so the next call checks once more before the watch vouches.
                self._close_watch()
                try:
                    self._watch = watch.TreeWatch(self.repo.root, manifest.memories)
                    self._watched = manifest.memories
                except OSError:
                    pass  # out of inotify watches: every call checks as `mtlgit recall` does
                return found
            self._vouched = (found, seq, time.monotonic())
            return found

    def _close_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None


def build_server(start: Path | None = None) -> MCPServer:
    """An MCP server bound to the repository containing ``start``."""
    recaller = WatchedRecaller(start)
    recaller.snapshot()
    server = _Server("mtlgit", instructions=INSTRUCTIONS)
    with_receipt = _ledger_tools(server, recaller, server.after_reply)
    _register(server, recaller, with_receipt)
    for tool in server._tool_manager.list_tools():
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = lean_schema(tool.fn_metadata.output_schema)
    _trace_only_when_traced(server)
    return server


def _trace_only_when_traced(server: MCPServer) -> None:
    """Leave out the SDK's OpenTelemetry middleware unless a tracer provider is installed (as by
    ``opentelemetry-instrument``): with none, its span records nothing but still costs ~10% of the server's
    time on a recall."""
    try:
        from mcp.server._otel import OpenTelemetryMiddleware
        from opentelemetry import trace
    except ImportError:  # another version of the SDK: its middleware stays as it ships
        return
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        lowlevel = server._lowlevel_server
        lowlevel.middleware = [m for m in lowlevel.middleware if not isinstance(m, OpenTelemetryMiddleware)]


def _register(server: MCPServer, recaller: WatchedRecaller, with_receipt: Any) -> None:
    """Register recall, add_memories, lint and show."""

    def guarded(call: Any) -> Any:
        try:
            return call()
        except MtlgitError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        description="Recall the memories most relevant to a task (hybrid BM25 + embedding, top k): the Memory Item "
        "block to put in your prompt, whole items within the prompt budget, and the results as structured content."
    )
    async def recall(
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
        request: RecallRequest = guarded(
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
        recalled: Recalled | None = None
        with recaller.vouched() as fresh:
            if fresh:  # only the scoring: on the event loop, no thread hop
                recalled = guarded(lambda: execute(request, recaller))
        if recalled is None:  # a refresh may take seconds: in a worker thread, so the server still answers pings
            recalled = cast(
                "Recalled", await anyio.to_thread.run_sync(lambda: guarded(lambda: execute(request, recaller)))
            )
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


def lean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the same meaning in the form a client checks fastest: each ``$ref`` to ``$defs`` inlined,
    an ``anyOf`` of plain types written as one list of types, and pydantic's generated titles and the default
    ``additionalProperties: true`` left out. The SDK's client checks every result against the tool's schema
    with jsonschema, whose cost grows with every keyword and reference it walks (recall's results: ~3 ms a
    call before, ~0.6 ms after). A schema whose definitions refer to themselves is kept as it is."""
    defs = schema.get("$defs", {})
    expanding: list[str] = []

    class Recursive(Exception):
        pass

    def walk(node: Any, names: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if names:  # the names of "properties", each with its schema
            return {name: walk(sub) for name, sub in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            if ref[8:] in expanding:
                raise Recursive
            expanding.append(ref[8:])
            target = walk(defs[ref[8:]])
            expanding.pop()
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        lean: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$defs" or (key == "title" and isinstance(value, str)):
                continue
            if key == "additionalProperties" and value is True:
                continue
            lean[key] = walk(value, names=key == "properties")
        kinds = lean.get("anyOf")
        if (
            isinstance(kinds, list)
            and kinds
            and "type" not in lean
            and all(isinstance(k, dict) and list(k) == ["type"] and isinstance(k["type"], str) for k in kinds)
        ):
            del lean["anyOf"]
            lean["type"] = [k["type"] for k in kinds]
        return lean

    try:
        return cast("dict[str, Any]", walk(schema))
    except Recursive:
        return schema


def _ledger_tools(server: MCPServer, recaller: Any, after_reply: _AfterReply) -> Any:
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

    appended = [True]  # whether the last receipt left for after the answer was appended

    def append_later(job: Callable[[], bool]) -> None:
        def run() -> None:
            appended[0] = job()

        after_reply.add(run)

    def with_receipt(result: Any, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
        # Once an append failed (a full disk, a ledger made unwritable), receipts are appended before the answer
        # again, so that no answer carries an id that is in no ledger, until one is appended.
        later = append_later if appended[0] else None
        receipt = ledger.record_recall(result, tool="mcp", repo=recaller.repo, later=later)
        if later is None:
            appended[0] = receipt is not None
        return {**data, "receipt": receipt}, ("\n\n" + ledger.receipt_line(receipt) if receipt else "")

    return with_receipt


def serve(start: Path | None = None) -> None:
    server = build_server(start)
    with _wire() as wire:
        if wire is None:
            server.run("stdio")
        else:
            try:
                anyio.run(_serve_pipes, server, *wire)
            except* _ClientGone:
                pass  # the client closed its end of the pipe: there is no one left to answer


class _ClientGone(Exception):
    """The client closed the pipe the server answers on."""


async def _serve_pipes(server: MCPServer, read_fd: int, write_fd: int) -> None:
    """The SDK's stdio transport and server, reading and writing the pipes on the event loop: the SDK's own
    streams hand every line read, write and flush to a worker thread."""
    from mcp.server.stdio import stdio_server

    after = server.after_reply if isinstance(server, _Server) else _AfterReply()
    writer = _Writer(write_fd, after)
    lines, out = cast("anyio.AsyncFile[str]", _Lines(read_fd)), cast("anyio.AsyncFile[str]", writer)
    lowlevel = server._lowlevel_server  # as MCPServer.run_stdio_async, with our streams
    after.deferring = True
    try:
        async with stdio_server(lines, out) as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
    finally:
        after.deferring = False
        after.run()  # the client left before the last answers' jobs ran


@contextmanager
def _wire() -> Iterator[tuple[int, int] | None]:
    """Private non-blocking descriptors of stdin and stdout for the transport, while fd 0 reads the null device
    and fd 1 writes to stderr (stray output of a library never reaches the wire, as with the SDK's streams).
    None when either is not a pipe or a socket (the event loop cannot wait on a file), or off POSIX: the SDK's
    streams then.
    """
    try:
        kinds = [os.fstat(fd).st_mode for fd in (0, 1)]
    except OSError:
        kinds = []
    if os.name != "posix" or len(kinds) != 2 or not all(stat.S_ISFIFO(m) or stat.S_ISSOCK(m) for m in kinds):
        yield None
        return
    sys.stdout.flush()
    wire = [os.dup(0), os.dup(1)]  # the pipes, the transport's alone; fd 0 and 1 get them back on the way out
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        for fd in wire:
            os.set_blocking(fd, False)
        yield wire[0], wire[1]
    finally:
        for fd in wire:
            os.set_blocking(fd, True)  # the pipe is shared with whoever started the server
        os.dup2(wire[0], 0)
        os.dup2(wire[1], 1)
        for fd in (*wire, null):
            os.close(fd)


class _Lines:
    """Stdin for the SDK's stdio transport: the lines of a non-blocking pipe, read when the event loop says it
    is readable."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        pending = b""
        while True:
            await anyio.wait_readable(self.fd)
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace") + "\n"
        if pending:
            yield pending.decode("utf-8", errors="replace")


class _Writer:
    """Stdout for the SDK's stdio transport: what is written goes to the non-blocking pipe on ``flush``, waiting
    on the event loop while the pipe is full."""

    def __init__(self, fd: int, after: _AfterReply) -> None:
        self.fd = fd
        self._pending: list[bytes] = []
        self._after = after

    async def write(self, text: str) -> None:
        self._pending.append(text.encode("utf-8"))

    async def flush(self) -> None:
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        while data:
            try:
                data = data[os.write(self.fd, data) :]
            except BlockingIOError:
                await anyio.wait_writable(self.fd)
            except (BrokenPipeError, ConnectionResetError):
                raise _ClientGone from None
        self._after.run()
