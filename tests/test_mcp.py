"""The MCP server, driven by the SDK's real stdio client in a subprocess."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import run_cli
from tests.test_prompt_and_gates import HOSTILE, HOSTILE_TITLES, check_prompt

mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def session(repo: Path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
    )
    async with Client(params, read_timeout_seconds=120) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {"recall", "add_memories", "lint", "show", "report_outcome"}

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

        lint = await client.call_tool("lint", {})
        assert not lint.is_error and lint.structured_content["errors"] == 0
        # A path cannot bypass the gate: a folder is searched, a missing path is an error.
        folder = await client.call_tool("lint", {"paths": ["memories"]})
        assert not folder.is_error and folder.structured_content["files"] == 2
        for path in ("nope.md", "README.md"):
            refused = await client.call_tool("lint", {"paths": [path]})
            assert refused.is_error and path in text_of(refused)

        # An edit in place made behind the server's back is seen without a restart.
        path = next((repo / "memories").rglob("bisect-a-regression*.md"))
        path.write_text(path.read_text().replace("let git bisect run", "let git bisect run (ZEBRAFISH)"))
        deadline = time.monotonic() + 15
        while True:
            seen = await client.call_tool("recall", {"query": "ZEBRAFISH", "k": 1, "mode": "bm25"})
            if seen.structured_content["results"] and "ZEBRAFISH" in seen.structured_content["results"][0]["content"]:
                break
            assert time.monotonic() < deadline, "the edit was not seen"
            await anyio.sleep(0.2)
        still = await client.call_tool("show", {"id": back.structured_content["results"][0]["id"]})
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
    anyio.run(session, repo)


def test_mcp_without_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "mcp")
    assert result.code == 1 and "not inside a git repository" in result.err
