"""The MCP server's own cost per call: its inotify watch in place of a stat of every file, the lean output
schemas, and the pipes read and written on the event loop. In process, on real repositories and pipes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")

from mtlgit.index import worktree
from mtlgit.mcp_server import RecallOutput, WatchedRecaller, _AfterReply, _Lines, _Writer, lean_schema
from mtlgit.watch import available

needs_inotify = pytest.mark.skipif(not available(), reason="inotify is Linux's")
HOUR_NS = 3600 * 1_000_000_000


def settle(repo: Path) -> None:
    """Files and folders written an hour ago: only their stat (or the watch) can show an edit."""
    past = time.time_ns() - HOUR_NS
    for path in [repo / "memories", *(repo / "memories").rglob("*")]:
        os.utime(path, ns=(past, past))


def add(cli: Any, title: str, content: str) -> None:
    result = cli("add", "-t", title, "-d", "When testing the server.", "-c", content)
    assert result.code == 0, result.output


def titles(recaller: WatchedRecaller, query: str) -> list[str]:
    return [str(hit.memory["title"]) for hit in recaller.recall(query, k=3, mode="bm25").hits]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the index checked every file's stat."""
    calls: list[int] = []
    real = worktree.is_fresh

    def is_fresh(*args: Any) -> bool:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(worktree, "is_fresh", is_fresh)
    return calls


@needs_inotify
def test_no_stat_of_every_file_while_the_watch_sees_nothing(repo: Path, cli: Any, counted: list[int]) -> None:
    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    settle(repo)
    recaller = WatchedRecaller(repo)
    titles(recaller, "lockfile")  # the watch is armed after the first check, vouches after the second
    titles(recaller, "lockfile")
    before = len(counted)
    for _ in range(10):
        assert titles(recaller, "lockfile") == ["Pin the lockfile before upgrading"]
    assert len(counted) == before, "a recall with nothing changed checked every file's stat"

    path = next((repo / "memories").rglob("*.md"))
    path.write_text(path.read_text(encoding="utf-8").replace("one package", "one ZEBRAFISH"), encoding="utf-8")
    assert not recaller.unchanged()
    assert titles(recaller, "ZEBRAFISH") == ["Pin the lockfile before upgrading"]
    assert len(counted) == before + 1


@needs_inotify
def test_edits_in_folders_made_or_moved_after_the_watch_are_seen(repo: Path, cli: Any) -> None:
    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    settle(repo)
    recaller = WatchedRecaller(repo)
    titles(recaller, "lockfile")
    titles(recaller, "lockfile")
    assert recaller.unchanged()

    # A folder made after the watch was armed, with a memory in it: seen, and so is an edit in place there.
    shutil.copy(next((repo / "memories").rglob("*.md")), repo / "copy.md")
    (repo / "memories" / "later").mkdir()
    text = (repo / "copy.md").read_text(encoding="utf-8")
    text = text.replace("Pin the lockfile", "Bisect the regression").replace("id: ", "id: 0", 1)
    later = repo / "memories" / "later" / "bisect.md"
    later.write_text(text, encoding="utf-8")
    assert "Bisect the regression before upgrading" in titles(recaller, "bisect")
    titles(recaller, "bisect")
    assert recaller.unchanged()
    later.write_text(text.replace("one package", "one QUOKKA"), encoding="utf-8")
    assert titles(recaller, "QUOKKA")[0] == "Bisect the regression before upgrading"

    # The memories folder moved away and back: the old watch has a gap, a new one is made.
    titles(recaller, "QUOKKA")
    (repo / "memories").rename(repo / "elsewhere")
    (repo / "elsewhere").rename(repo / "memories")
    titles(recaller, "QUOKKA")
    titles(recaller, "QUOKKA")
    assert recaller.unchanged()
    later.write_text(text.replace("one package", "one WOMBAT"), encoding="utf-8")
    assert titles(recaller, "WOMBAT")[0] == "Bisect the regression before upgrading"


@needs_inotify
def test_an_edit_through_a_symlinks_target_is_seen(repo: Path, cli: Any) -> None:
    """An edit of a symlinked memory's target, or of a file in a symlinked folder whose target was removed and
    made again, raises no event in the watched tree: a tree holding a symlink is never vouched for."""
    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    path = next((repo / "memories").rglob("*.md"))
    target = repo / "docs" / path.name
    target.parent.mkdir()
    path.rename(target)
    path.symlink_to(os.path.relpath(target, path.parent))
    shared = repo / "shared"
    shared.mkdir()
    (repo / "memories" / "shared").symlink_to("../shared")
    settle(repo)
    recaller = WatchedRecaller(repo)
    for _ in range(3):
        assert titles(recaller, "lockfile") == ["Pin the lockfile before upgrading"]
    assert not recaller.unchanged()
    target.write_text(target.read_text(encoding="utf-8").replace("one package", "one ZEBRAFISH"), encoding="utf-8")
    assert titles(recaller, "ZEBRAFISH") == ["Pin the lockfile before upgrading"]

    shutil.rmtree(shared)  # the symlinked folder's target removed and made again, then a memory written in it
    shared.mkdir()
    moved = shared / "giraffe.md"
    moved.write_text(target.read_text(encoding="utf-8").replace("ZEBRAFISH", "GIRAFFE"), encoding="utf-8")
    target.unlink()
    path.unlink()
    assert titles(recaller, "GIRAFFE") == ["Pin the lockfile before upgrading"]
    moved.write_text(moved.read_text(encoding="utf-8").replace("GIRAFFE", "OKAPI"), encoding="utf-8")
    assert titles(recaller, "OKAPI") == ["Pin the lockfile before upgrading"]
    assert titles(recaller, "GIRAFFE") == []


@needs_inotify
def test_freshness_stat_is_kept_as_configured(repo: Path, cli: Any, counted: list[int]) -> None:
    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    recaller = WatchedRecaller(repo)
    titles(recaller, "lockfile")
    titles(recaller, "lockfile")
    assert recaller.unchanged()
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("freshness: auto", "freshness: stat"))
    for _ in range(3):
        titles(recaller, "lockfile")
        assert not recaller.unchanged()
    before = len(counted)
    titles(recaller, "lockfile")
    assert len(counted) == before + 1


def recall_schema() -> dict[str, Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(RecallOutput).json_schema()


def test_the_lean_schema_accepts_and_refuses_what_the_full_one_does() -> None:
    from jsonschema.validators import validator_for

    full = recall_schema()
    lean = lean_schema(full)
    text = json.dumps(lean)
    assert "$ref" not in text and "$defs" not in text and "anyOf" not in text and '"Rank"' not in text
    assert lean["properties"]["results"]["items"]["properties"]["confidence"]["description"]
    hit = {
        "rank": 1,
        "score": 0.5,
        "confidence": 0.7,
        "id": "m1",
        "title": "t",
        "content": "c",
        "format": "insight",
        "path": "memories/m1.md",
        "pool": "local",
        "notes": [],
        "tags": ["extra fields are allowed"],
    }
    good = {
        "query": "q",
        "mode": "hybrid",
        "k": 3,
        "min_confidence": 0.5,
        "results": [hit],
        "reason": None,
        "pool_size": 1,
        "unreadable_files": 0,
        "notes": [],
        "budget": {"tokens": 10, "used": 5, "left_out": [{"rank": 2, "id": None, "title": None, "tokens": 9}]},
        "receipt": None,
        "extra": 1,
    }
    variants = [
        good,
        {**good, "reason": "nothing", "receipt": "rc-1"},
        {**good, "reason": 5},
        {**good, "results": [{**hit, "rank": "1"}]},
        {**good, "results": [{**hit, "title": None}]},
        {**good, "results": [{k: v for k, v in hit.items() if k != "path"}]},
        {**good, "budget": {**good["budget"], "left_out": [{"rank": 2, "id": 3, "title": None, "tokens": 9}]}},
        {**good, "budget": {"tokens": 10, "used": 5}},
        {k: v for k, v in good.items() if k != "receipt"},
        {**good, "notes": [1]},
    ]
    verdicts = []
    for schema in (full, lean):
        validator = validator_for(schema)(schema)
        verdicts.append([validator.is_valid(instance) for instance in variants])
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][:2] == [True, True] and not any(verdicts[0][2:])


def test_a_schema_that_refers_to_itself_is_kept() -> None:
    schema = {
        "$defs": {"Node": {"properties": {"next": {"$ref": "#/$defs/Node"}}, "title": "Node", "type": "object"}},
        "$ref": "#/$defs/Node",
    }
    assert lean_schema(schema) == schema


def test_the_pipe_reader_keeps_lines_and_characters_whole() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    parts = [b'{"a": 1}\n{"b": "\xc3', b'\xa9"}\n', b"", b'{"c": 3', b"}\n{tail}"]

    def feed() -> None:
        for part in parts:
            os.write(write_fd, part)
            time.sleep(0.02)
        os.close(write_fd)

    async def read_all() -> list[str]:
        return [line async for line in _Lines(read_fd)]

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        lines = anyio.run(read_all)
    finally:
        feeder.join()
        os.close(read_fd)
    assert lines == ['{"a": 1}\n', '{"b": "é"}\n', '{"c": 3}\n', "{tail}"]


def test_the_pipe_writer_waits_while_the_pipe_is_full() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    message = "".join(f"line {n} é\n" for n in range(60_000))  # ~0.6 MB: many times a pipe's buffer
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_fd, 4096):
            received.extend(chunk)
            time.sleep(0.0005)

    after, ran = _AfterReply(), []
    after.deferring = True
    after.add(lambda: ran.append(len(received)))  # a receipt to append once the answer is written

    async def write_all() -> None:
        writer = _Writer(write_fd, after)
        await writer.write(message[:1000])
        await writer.write(message[1000:])
        assert not ran
        await writer.flush()
        assert len(ran) == 1 and len(message.encode()) - ran[0] <= 65536  # all but a pipe's buffer was read

    drainer = threading.Thread(target=drain)
    drainer.start()
    try:
        anyio.run(write_all)
    finally:
        os.close(write_fd)
        drainer.join()
        os.close(read_fd)
    assert received.decode("utf-8") == message


STRAY = """
import os, sys
from mtlgit.mcp_server import _wire
with _wire() as wire:
    if wire is None:
        print("no wire")
    else:
        print("stray print")
        sys.stdout.flush()
        os.write(1, b"stray write")
        os.write(wire[1], b"on the wire")
print("after", flush=True)
"""


def test_stray_output_never_reaches_the_wire() -> None:
    proc = subprocess.run([sys.executable, "-c", STRAY], input=b"", capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"on the wireafter\n"
    assert b"stray print" in proc.stderr and b"stray write" in proc.stderr


def test_a_file_for_stdin_keeps_the_sdk_streams(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with empty.open("rb") as stdin:
        proc = subprocess.run([sys.executable, "-c", STRAY], stdin=stdin, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"no wire\nafter\n"


def test_receipts_in_a_long_lived_process_follow_the_configuration(repo: Path, cli: Any) -> None:
    from mtlgit.receipts import ledger_dir, record_recall

    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    recaller = WatchedRecaller(repo)
    result = recaller.recall("lockfile", k=1, mode="bm25")
    assert str(record_recall(result, tool="mcp", repo=recaller.repo)).startswith("rc-")
    config = repo / ".mtlgit.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "ledger:\n  record: false\n", encoding="utf-8")
    assert record_recall(result, tool="mcp", repo=recaller.repo) is None
    config.write_text(text, encoding="utf-8")
    receipts = ledger_dir(recaller.repo) / "receipts"
    shutil.rmtree(receipts)  # removed behind the process's back: made again for the next receipt
    receipt = record_recall(result, tool="mcp", repo=recaller.repo)
    [written] = receipts.glob("*.jsonl")
    assert [json.loads(line)["id"] for line in written.read_text(encoding="utf-8").splitlines()] == [receipt]


def test_a_receipt_left_for_after_the_answer_is_appended_then_or_said_on_stderr(
    repo: Path, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from mtlgit.receipts import ledger_dir, record_recall

    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    recaller = WatchedRecaller(repo)
    result = recaller.recall("lockfile", k=1, mode="bm25")
    receipts = ledger_dir(recaller.repo) / "receipts"
    jobs: list[Any] = []
    receipt = record_recall(result, tool="mcp", repo=recaller.repo, later=jobs.append)
    assert str(receipt).startswith("rc-") and len(jobs) == 1 and not list(receipts.glob("*.jsonl"))
    jobs.pop()()
    [written] = receipts.glob("*.jsonl")
    assert [json.loads(line)["id"] for line in written.read_text(encoding="utf-8").splitlines()] == [receipt]
    shutil.rmtree(receipts)
    receipts.write_text("not a folder", encoding="utf-8")  # the ledger cannot be written by then
    lost = record_recall(result, tool="mcp", repo=recaller.repo, later=jobs.append)
    jobs.pop()()
    assert f"receipt {lost} could not be written" in capsys.readouterr().err


@needs_inotify
def test_a_vouch_expires(repo: Path, cli: Any, counted: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Now and then a call checks as `mtlgit recall` does, which keeps the worktree's watcher process asked."""
    from mtlgit import mcp_server

    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    recaller = WatchedRecaller(repo)
    titles(recaller, "lockfile")
    titles(recaller, "lockfile")
    assert recaller.unchanged()
    monkeypatch.setattr(mcp_server, "VOUCH_SECONDS", 0.0)
    assert not recaller.unchanged()
    before = len(counted)
    titles(recaller, "lockfile")
    assert len(counted) == before + 1


@needs_inotify
def test_the_event_loop_never_waits_for_a_refresh(repo: Path, cli: Any) -> None:
    """While a worker thread checks or refreshes, the recall tool's question answers at once: not vouched."""
    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    recaller = WatchedRecaller(repo)
    titles(recaller, "lockfile")
    titles(recaller, "lockfile")
    assert recaller.unchanged()
    held, done = threading.Event(), threading.Event()

    def refresh() -> None:  # holds the check's lock as a long refresh in a worker thread does
        with recaller._lock:
            held.set()
            done.wait(10)

    worker = threading.Thread(target=refresh)
    worker.start()
    try:
        held.wait(10)
        started = time.monotonic()
        assert not recaller.unchanged()
        assert time.monotonic() - started < 1
    finally:
        done.set()
        worker.join()
    assert recaller.unchanged()


def test_the_server_publishes_lean_schemas_and_no_idle_tracing(repo: Path) -> None:
    from mcp.server._otel import OpenTelemetryMiddleware
    from opentelemetry import trace

    from mtlgit.mcp_server import build_server

    server = build_server(repo)
    schema = server._tool_manager.get_tool("recall").output_schema  # type: ignore[union-attr]
    assert schema == lean_schema(recall_schema())
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):  # none installed
        assert not any(isinstance(m, OpenTelemetryMiddleware) for m in server._lowlevel_server.middleware)


@needs_inotify
def test_a_refresh_cannot_start_between_the_vouch_and_the_recall(
    repo: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recall vouched for on the event loop keeps the check held until it has answered: a refresh that
    another thread (add_memories) starts in between waits for it, rather than the event loop waiting for the
    refresh (here one that holds the check for 3 s)."""
    from mtlgit import mcp_server
    from mtlgit.mcp_server import build_server

    add(cli, "Pin the lockfile before upgrading", "Commit the lockfile, then upgrade one package at a time.")
    server = build_server(repo)
    real = mcp_server.execute
    threads: list[threading.Thread] = []

    def execute(request: Any, recaller: Any, *args: Any, **kwargs: Any) -> Any:
        if len(threads) == 1:  # the second call, vouched for by the first: a refresh starts right now

            def refresh() -> None:
                with recaller._lock:
                    time.sleep(3)

            threads.append(threading.Thread(target=refresh))
            threads[-1].start()
            time.sleep(0.3)  # the refresh takes the check if it is free
        elif not threads:
            threads.append(threading.current_thread())
        return real(request, recaller, *args, **kwargs)

    monkeypatch.setattr(mcp_server, "execute", execute)

    async def calls() -> list[float]:
        took = []
        for _ in range(2):
            started = time.monotonic()
            result = await server.call_tool("recall", {"query": "lockfile"})
            took.append(time.monotonic() - started)
            assert not result.is_error
        return took

    try:
        took = anyio.run(calls)
    finally:
        for thread in threads[1:]:
            thread.join()
    assert len(threads) == 2
    assert took[1] < 2, took
