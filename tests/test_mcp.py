"""The MCP server, driven by the SDK's real stdio client in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import run_cli
from tests.test_prompt_and_gates import HOSTILE, HOSTILE_TITLES, check_prompt

mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")


# The MCP inspector's CLI, a third-party client, run only from npm's cache: a test never downloads it. The
# cache is the user's (read here, before the session fixture gives the tests a temporary HOME). To cache it:
# `npx -y @modelcontextprotocol/inspector@0.15.0 --cli --help`.
INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"
NPM_CACHE = os.environ.get("npm_config_cache") or str(Path.home() / ".npm")


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def session(repo: Path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
    )
    async with Client(params, read_timeout_seconds=120) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {"recall", "add_memories", "lint", "show", "report_outcome"}
        check_recall_schema(listed["recall"].input_schema, listed["recall"].output_schema)
        assert set(listed["lint"].output_schema["properties"]) == {"files", "errors", "warnings", "problems", "skipped"}

        first = await client.call_tool("recall", {"query": "failing test before the fix"})
        assert not first.is_error
        assert first.structured_content["results"][0]["title"] == "Reproduce the bug with a failing test first"
        assert "# Memory Item 1" in text_of(first) and "say which item you use" in text_of(first)

        item = {
            "title": "Bisect a regression with git bisect run",
            "description": "When a bug appeared between two known versions.",
            "content": "Write a script that exits non-zero on the bug and let git "
            "bisect run find the first bad commit.",
            "domains": ["git"],
            "tags": ["debugging"],
        }
        added = await client.call_tool("add_memories", {"items": [item, {"title": "no content"}]})
        assert not added.is_error
        assert added.structured_content["added"] == 1 and added.structured_content["rejected"] == 1
        back = await client.call_tool("recall", {"query": "which commit introduced the regression", "k": 1})
        assert back.structured_content["results"][0]["title"] == item["title"]

        bad = await client.call_tool("recall", {"query": "x", "k": "lots"})
        assert bad.is_error
        worse = await client.call_tool("recall", {"query": "x", "mode": "psychic"})
        assert worse.is_error and "mode must be one of" in text_of(worse)
        missing = await client.call_tool("show", {"id": "ZZZZZZ"})
        assert missing.is_error and "no memory has the id" in text_of(missing)

        await check_arguments(client)

        lint = await client.call_tool("lint", {})
        assert not lint.is_error and lint.structured_content["errors"] == 0
        # One serialiser: the tool answers exactly what `mtlgit lint --json` prints.
        assert lint.structured_content == json.loads(run_cli(repo, "lint", "--json").out)
        # A path cannot bypass the gate: a folder is searched, a missing path is an error.
        folder = await client.call_tool("lint", {"paths": ["memories"]})
        assert not folder.is_error and folder.structured_content["files"] == 2
        for path in ("nope.md", "README.md"):
            refused = await client.call_tool("lint", {"paths": [path]})
            assert refused.is_error and path in text_of(refused)

        # An edit in place made behind the server's back is seen by the very next call (never stale).
        path = repo / first.structured_content["results"][0]["path"]
        path.write_text(path.read_text().replace("then fix the code", "then fix the code (ZEBRAFISH)"))
        seen = await client.call_tool("recall", {"query": "ZEBRAFISH", "k": 1, "mode": "bm25"})
        assert seen.structured_content["results"], "the edit was not seen"
        assert "ZEBRAFISH" in seen.structured_content["results"][0]["content"]
        still = await client.call_tool("show", {"id": first.structured_content["results"][0]["id"]})
        assert not still.is_error and "ZEBRAFISH" in still.structured_content["content"]

        # The recall tool gives the same safe block as `recall --prompt`.
        hostile = {
            "title": "Clean shell scripts before review",
            "description": "When tidying scripts.",
            "content": HOSTILE,
        }
        assert (await client.call_tool("add_memories", {"items": [hostile]})).structured_content["added"] == 1
        framed = await client.call_tool("recall", {"query": "clean shell scripts developer mode", "k": 1})
        assert check_prompt(text_of(framed), HOSTILE_TITLES)[-1] == HOSTILE


def check_recall_schema(input_schema: dict[str, Any], output_schema: dict[str, Any] | None) -> None:
    """The recall tool's schema: mode and formats are enums, k has the command line's range, and it declares
    its output."""
    from mtlgit.recall_request import K_MAX
    from mtlgit.rules import FORMATS, MODES

    def kind(prop: dict[str, Any]) -> dict[str, Any]:
        return next(s for s in prop.get("anyOf", [prop]) if s.get("type") != "null")

    props = input_schema["properties"]
    assert kind(props["mode"])["enum"] == list(MODES)
    assert kind(props["formats"])["items"]["enum"] == list(FORMATS)
    assert (kind(props["k"])["minimum"], kind(props["k"])["maximum"]) == (1, K_MAX)
    assert kind(props["budget"])["minimum"] == 0
    assert output_schema is not None
    output = output_schema["properties"]
    assert {"results", "budget", "receipt", "reason"} <= set(output)
    hit = output["results"]["items"]
    if "$ref" in hit:
        hit = output_schema["$defs"][hit["$ref"].rsplit("/", 1)[1]]
    assert {"rank", "id", "title", "content", "path", "confidence"} <= set(hit["properties"])


async def check_arguments(client: Any) -> None:
    """Arguments of the wrong shape are one line naming the field and the fix; k and budget as on the CLI."""
    from mtlgit.recall_request import K_MAX

    for items in ("hello", 5, {"title": "x"}, ["hello"]):
        refused = await client.call_tool("add_memories", {"items": items})
        message = text_of(refused)
        assert refused.is_error and "\n" not in message, message
        assert "items must be a list of memory objects, e.g. [{" in message, message
        assert "validation error" not in message and "pydantic" not in message
    for k in (0, K_MAX + 1):
        refused = await client.call_tool("recall", {"query": "failing test", "k": k})
        assert refused.is_error and f"k must be a whole number from 1 to {K_MAX}, not {k}" in text_of(refused)
    assert not (await client.call_tool("recall", {"query": "failing test", "k": K_MAX})).is_error
    missing = await client.call_tool("recall", {})
    assert missing.is_error and "query is missing: give the task" in text_of(missing)

    query = "failing test before the fix"
    one = (await client.call_tool("recall", {"query": query, "k": 1, "budget": 0})).structured_content["budget"]
    assert one["left_out"] == [] and one["used"] > 0
    tight = await client.call_tool("recall", {"query": query, "k": 2, "budget": one["used"]})
    assert not tight.is_error
    data = tight.structured_content
    assert data["budget"]["tokens"] == data["budget"]["used"] == one["used"]
    assert [r["rank"] for r in data["results"]] == [1]
    assert [item["rank"] for item in data["budget"]["left_out"]] == [2]
    assert "# Memory Item 1" in text_of(tight) and "left out 1 memory (rank 2" in text_of(tight)
    none = await client.call_tool("recall", {"query": query, "k": 2, "budget": 10})
    assert none.structured_content["results"] == [] and "No memory recalled: the prompt budget of 10" in text_of(none)


def test_an_agent_uses_mtlgit_over_mcp(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "add",
        "-t",
        "Reproduce the bug with a failing test first",
        "-d",
        "Before fixing a bug.",
        "-c",
        "Write the smallest test that fails for the reported reason, then fix the code.",
    )
    assert result.code == 0, result.output
    hour_ago = time.time_ns() - 3600 * 1_000_000_000
    for path in (repo / "memories").rglob("*.md"):  # settled files: only their stat can show an edit in place
        os.utime(path, ns=(hour_ago, hour_ago))
    anyio.run(session, repo)


def test_mcp_without_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "mcp")
    assert result.code == 1 and "not inside a git repository" in result.err


def inspector(repo: Path, *args: str) -> dict[str, Any]:
    """The JSON the inspector's CLI prints for one request to ``mtlgit mcp`` in ``repo``."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: the MCP inspector cannot run")
    proc = subprocess.run(
        [npx, "--offline", "--no-install", INSPECTOR, "--cli", sys.executable, "-m", "mtlgit", "mcp", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "npm_config_cache": NPM_CACHE, "npm_config_update_notifier": "false"},
    )
    if "ENOTCACHED" in proc.stderr or "npx canceled due to missing packages" in proc.stderr:
        pytest.skip(f"{INSPECTOR} is not in npm's cache ({NPM_CACHE}): `npx -y {INSPECTOR} --cli --help` caches it")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_mcp_inspector_sees_the_schemas_and_one_line_errors(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "add", "-t", "Reproduce the bug with a failing test first", "-d", "Before fixing a bug.", "-c", "x" * 400
    )
    assert result.code == 0, result.output
    listed = inspector(repo, "--method", "tools/list")
    tool = next(tool for tool in listed["tools"] if tool["name"] == "recall")
    check_recall_schema(tool["inputSchema"], tool.get("outputSchema"))

    hello = inspector(repo, "--method", "tools/call", "--tool-name", "add_memories", "--tool-arg", "items=hello")
    message = hello["content"][0]["text"]
    assert hello["isError"] and "\n" not in message and "items must be a list of memory objects" in message

    # The inspector passes every argument as text; the server reads numbers from it.
    recalled = inspector(
        repo,
        *("--method", "tools/call", "--tool-name", "recall"),
        *("--tool-arg", "query=failing test before the fix", "--tool-arg", "k=1000", "--tool-arg", "budget=50"),
    )
    assert not recalled.get("isError")
    data = recalled["structuredContent"]
    assert data["results"] == [] and data["budget"]["left_out"][0]["rank"] == 1
    assert "the prompt budget of 50 tokens left out 1 memory" in recalled["content"][0]["text"]


def test_a_client_that_closes_its_end_ends_the_server_quietly(repo: Path) -> None:
    """A client that goes away (its read end of the pipe closed) while a call is being answered ends the server
    with exit 0: no crash log, nothing on stderr (it used to end as an internal error, exit 3)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mtlgit", "mcp"],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert server.stdin is not None and server.stdout is not None and server.stderr is not None

    def send(message: dict[str, Any]) -> None:
        assert server.stdin is not None
        server.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())
        server.stdin.flush()

    client = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
    send({"id": 1, "method": "initialize", "params": client})
    assert json.loads(server.stdout.readline())["id"] == 1
    send({"method": "notifications/initialized"})
    server.stdout.close()
    send({"id": 2, "method": "tools/call", "params": {"name": "recall", "arguments": {"query": "a flaky test"}}})
    time.sleep(1.0)  # the answer meets the closed pipe
    server.stdin.close()
    assert server.wait(timeout=30) == 0
    assert server.stderr.read() == b""
    assert not (repo / ".git" / "mtlgit" / "crash.log").exists()
