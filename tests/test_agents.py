"""The agent recipes of docs/agents.md, run as far as this machine allows (the agents are stand-ins)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from mtlgit.frontmatter import parse
from tests.conftest import run_cli, write

DOC = Path(__file__).resolve().parent.parent / "docs" / "agents.md"
LOOP = DOC.parent / "examples" / "agent_loop.sh"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def seed(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "add",
        "-t",
        "Reproduce the reported failure before changing code",
        "-d",
        "Before fixing a bug.",
        "-c",
        "Run the reporter's steps and watch them fail first; only then edit the code.",
    )
    assert result.code == 0, result.output


def test_the_json_configurations_parse_and_name_a_real_command() -> None:
    configs = [json.loads(block) for block in blocks("json")]
    assert len(configs) == 4
    servers = [c["mcpServers"]["mtlgit"] for c in configs if "mcpServers" in c]
    assert servers == [{"command": "mtlgit", "args": ["mcp"]}] * 2
    hook = next(c for c in configs if "hooks" in c)["hooks"]["UserPromptSubmit"][0]["hooks"][0]
    assert hook["command"] == "mtlgit recall --prompt --hook-input"


def test_the_claude_code_prompt_hook_adds_memories(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    payload = {
        "session_id": "s1",
        "hook_event_name": "UserPromptSubmit",
        "cwd": str(repo),
        "prompt": "the bug report says the parser crashes, please fix it",
    }
    result = cli("recall", "--prompt", "--hook-input", input=json.dumps(payload))
    assert result.code == 0, result.output
    assert "# Memory Item 1\n## Title\n```\nReproduce the reported failure" in result.out
    bad = cli("recall", "--prompt", "--hook-input", input="not json")
    assert bad.code == 1 and "--hook-input: standard input is not JSON" in bad.err


def test_the_cursor_rule_is_a_valid_rule_file() -> None:
    rule = next(block for block in blocks("markdown") if block.startswith("---"))
    doc = parse(rule)
    assert doc.meta["alwaysApply"] is True and "recall" in doc.body


def test_the_agents_md_snippet_names_commands_that_work(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    snippet = next(block for block in blocks("markdown") if block.startswith("## Team memory"))
    commands = re.findall(r"`(mtlgit [^`]+)`", snippet)
    assert commands[0].startswith("mtlgit recall --prompt")
    assert cli("recall", "--prompt", "fix the crash in the parser").code == 0
    assert cli("prompt", "extract", "--outcome", "success").code == 0
    assert cli("prompt", "extract", "--outcome", "failure").code == 0


def test_the_shell_loop_runs_an_agent_and_stores_what_it_learned(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    seen = tmp_path / "prompts.txt"
    agent = write(
        tmp_path / "agent.py",
        f"""\
import json, sys
prompt = sys.argv[-1]
with open({str(seen)!r}, "a") as log:
    log.write(prompt + "\\n=====\\n")
if "Turn what you learned" in prompt:
    print(json.dumps([{{"title": "Read the parser's error position before editing",
                        "description": "When a parser reports a syntax error.",
                        "content": "Print the offending position and the text around it first.",
                        "domains": ["python"], "tags": ["debugging"]}}]))
else:
    print("I reproduced the crash and fixed it.")
""",
    )
    bindir = Path(sys.executable).parent
    env = {**os.environ, "AGENT": f"{sys.executable} {agent}", "PATH": f"{bindir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", str(LOOP), "Fix the crash in the date parser"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    prompts = seen.read_text()
    assert "# Memory Item 1" in prompts and "# Task\nFix the crash in the date parser" in prompts
    assert "The attempt SUCCEEDED" in prompts and "I reproduced the crash" in prompts
    assert json.loads(result.stdout.split("\n", 1)[1])["added"] == 1
    listed = json.loads(run_cli(repo, "list", "--json").out)
    assert "Read the parser's error position before editing" in {m["title"] for m in listed}
