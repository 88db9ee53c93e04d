"""Code citations (source.cites): fresh, drifted and orphaned states across real git histories."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mtlgit import citations
from mtlgit.citations import find_symbol, map_lines, parse_spec
from tests.conftest import git, run_cli, write

PARSER = """\
import re


def parse(text):
    return text.split()


class Reader:
    def read(self, path):
        with open(path) as handle:
            return parse(handle.read())


def tail(items):
    return items[-1]
"""


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def add_memory(repo: Path, *cites: str, title: str = "The parser splits on whitespace") -> dict[str, Any]:
    args = ["add", "-t", title, "-d", "When parsing input text.", "-c", "Tokens are separated by whitespace."]
    for cite in cites:
        args += ["--cite", cite]
    result = run_cli(repo, *args, "--json")
    assert result.code == 0, result.output
    commit(repo, f"memory: {title}")
    return json.loads(result.out)  # type: ignore[no-any-return]


def state(repo: Path, query: str = "parser whitespace") -> dict[str, Any]:
    result = run_cli(repo, "recall", query, "--json", "-k", "1")
    assert result.code == 0, result.output
    hit = json.loads(result.out)["results"][0]
    return {"notes": hit["notes"], **hit["citations"]}


def cite_states(found: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["state"], c["detail"]) for c in found["cites"]]


@pytest.fixture
def code(repo: Path) -> str:
    """The repository with src/parser.py committed; the commit id."""
    write(repo / "src" / "parser.py", PARSER)
    return commit(repo, "code")


# --- citations in the file ------------------------------------------------------------------------------


def test_add_records_the_citations_at_head_and_refuses_one_that_does_not_hold(repo: Path, code: str) -> None:
    memory = add_memory(repo, "src/parser.py:parse", "src/parser.py:14-15", "src/parser.py")
    assert memory["source"]["commit"] == code
    assert memory["source"]["cites"] == [
        {"path": "src/parser.py", "symbol": "parse"},
        {"path": "src/parser.py", "lines": [14, 15]},
        {"path": "src/parser.py"},
    ]
    missing = run_cli(repo, "add", "-t", "x y z", "-d", "When x.", "-c", "y", "--cite", "src/parser.py:nope")
    assert missing.code != 0 and "'nope' is not defined in src/parser.py" in missing.err
    outside = run_cli(repo, "add", "-t", "x y z", "-d", "When x.", "-c", "y", "--cite", "../etc/passwd")
    assert outside.code != 0 and "leaves the repository" in outside.err
    assert "Traceback" not in missing.output + outside.output


def test_lint_names_file_and_line_of_a_citation_that_does_not_hold(repo: Path, code: str) -> None:
    text = f"""---
id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B
title: Reader reads whole files
description: When reading input files.
format: insight
source:
  commit: {code}
  cites:
    - path: src/parser.py
      symbol: Reader.read
    - path: src/parser.py
      symbol: Writer
    - path: src/parser.py
      lines: [10, 99]
---
The reader reads the whole file at once.
"""
    write(repo / "memories" / "insight" / "reader.md", text)
    outside = text.replace("path: src/parser.py\n      symbol: Reader.read", "path: /etc/passwd").replace(
        "01JDQ2V6R3J8Z6TT4M0S3W4K9B", "01JDQ2V6R3J8Z6TT4M0S3W4K9C"
    )
    write(repo / "memories" / "insight" / "outside.md", outside)
    result = run_cli(repo, "lint")
    assert result.code == 1, result.output
    assert "memories/insight/reader.md:11: error: source.cites: 'Writer' is not defined in src/parser.py" in result.out
    assert "memories/insight/reader.md:13: error: source.cites: src/parser.py:10-99 runs past the end" in result.out
    assert "Reader.read" not in result.out  # a nested symbol found inside its class
    assert "memories/insight/outside.md:8: error: source.cites: cited path '/etc/passwd' must be relative" in result.out


# --- states at recall ---------------------------------------------------------------------------------------


def test_lines_inserted_above_keep_a_range_fresh_and_an_edit_inside_drifts_it(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:14-15")
    assert cite_states(state(repo)) == [("fresh", "unchanged")]
    middle = PARSER.replace("\n\ndef tail", "\n\ndef first(items):\n    return items[0]\n\n\ndef tail")
    write(repo / "src" / "parser.py", '"""Parsing."""\nimport os\n' + middle + "\n\ndef head(items):\n    return 0\n")
    commit(repo, "lines above, between and below")
    found = state(repo)
    assert found["state"] == "fresh" and found["notes"] == []
    assert found["cites"][0]["now"] == {"path": "src/parser.py", "lines": [20, 21]}
    write(repo / "src" / "parser.py", PARSER.replace("items[-1]", "items[-1] if items else None"))
    commit(repo, "edit inside the range")
    found = state(repo)
    assert found["state"] == "drifted"
    assert found["notes"][0].startswith("drifted: src/parser.py:14-15 changed")
    assert found["notes"][0].endswith("verify this memory against the code")


def test_a_symbol_is_followed_across_a_rename_and_drifts_when_its_body_changes(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:parse")
    git(repo, "mv", "src/parser.py", "src/parsing.py")
    commit(repo, "rename")
    # Then most of the file changes: git diff -M from the memory's commit no longer pairs the two names, the
    # rename of each commit (as git log --follow sees them) still does.
    extra = "".join(f"\n\ndef step_{n}(value):\n    return value + {n}\n" for n in range(12))
    write(repo / "src" / "parsing.py", PARSER.split("\n\nclass Reader")[0] + "\n" + extra)
    commit(repo, "rework")
    assert "parsing.py" not in git(repo, "diff", "-M", "--name-status", f"{code}", "HEAD").replace(
        "A\tsrc/parsing.py", ""
    )
    found = state(repo)
    assert cite_states(found) == [("fresh", "unchanged (now src/parsing.py)")]
    assert found["cites"][0]["now"] == {"path": "src/parsing.py", "lines": [4, 5]}
    write(repo / "src" / "parsing.py", (repo / "src" / "parsing.py").read_text().replace("split()", "split(',')"))
    commit(repo, "change parse")
    assert cite_states(state(repo)) == [("drifted", "changed (now src/parsing.py)")]


def test_a_deleted_file_and_a_deleted_symbol_orphan_the_memory(repo: Path, code: str) -> None:
    write(repo / "src" / "util.py", "def helper():\n    return 1\n")
    commit(repo, "util")
    add_memory(repo, "src/parser.py:tail", "src/util.py:helper")
    write(repo / "src" / "parser.py", PARSER.split("\n\ndef tail")[0] + "\n")
    (repo / "src" / "util.py").unlink()
    commit(repo, "drop tail and util")
    found = state(repo)
    assert found["state"] == "orphaned"
    assert cite_states(found) == [("orphaned", "is no longer defined in src/parser.py"), ("orphaned", "was deleted")]
    text = run_cli(repo, "recall", "parser whitespace", "-k", "1").out
    assert (
        "! orphaned: src/parser.py:tail is no longer defined in src/parser.py; src/util.py:helper was deleted" in text
    )


def test_a_symbol_moved_to_another_file_is_orphaned_and_the_note_says_where_it_went(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:tail")
    write(repo / "src" / "parser.py", PARSER.split("\n\ndef tail")[0] + "\n")
    write(repo / "src" / "lists.py", '"""Lists."""\n\n\ndef tail(items):\n    return items[-1]\n')
    commit(repo, "move tail")
    found = state(repo)
    assert cite_states(found) == [
        ("orphaned", "is no longer defined in src/parser.py (a definition of that name is now in src/lists.py:4)")
    ]
    (repo / "src" / "parser.py").unlink()
    commit(repo, "drop the parser")
    assert cite_states(state(repo)) == [
        ("orphaned", "was deleted (a definition of that name is now in src/lists.py:4)")
    ]


def test_a_merge_brings_a_change_to_the_cited_code(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:parse", "src/parser.py:tail")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo / "src" / "parser.py", PARSER.replace("return items[-1]", "return items[-1:]"))
    commit(repo, "feature changes tail")
    git(repo, "checkout", "-q", "main")
    write(repo / "src" / "parser.py", "# header\n" + PARSER)
    commit(repo, "main adds a line above")
    assert state(repo)["state"] == "fresh"
    git(repo, "merge", "-q", "--no-edit", "feature")
    assert len(git(repo, "log", "--merges", "--format=%H").split()) == 1
    found = state(repo)
    assert [c["state"] for c in found["cites"]] == ["fresh", "drifted"]
    assert found["cites"][0]["now"]["lines"] == [5, 6]


def test_a_memory_written_on_a_rebased_branch_keeps_its_states(repo: Path, code: str) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    add_memory(repo, "src/parser.py:parse", "src/parser.py:14-15")
    git(repo, "checkout", "-q", "main")
    write(repo / "src" / "parser.py", "# header\n# more\n" + PARSER.replace("items[-1]", "items[-2]"))
    commit(repo, "main: lines above, tail changed")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")
    # The memory names a commit the rebased branch no longer contains; git still has it.
    found = state(repo)
    assert [c["state"] for c in found["cites"]] == ["fresh", "drifted"]
    assert found["cites"][0]["now"]["lines"] == [6, 7]


def test_prompt_explain_and_text_show_the_state(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:parse")
    prompt = run_cli(repo, "recall", "parser whitespace", "-k", "1", "--prompt").out
    assert "The code it cites (src/parser.py:parse) is unchanged since it was written." in prompt
    explain = run_cli(repo, "recall", "parser whitespace", "-k", "1", "--explain").out
    assert "cites fresh (src/parser.py:parse)" in explain
    write(repo / "src" / "parser.py", PARSER.replace("split()", "split(None)"))
    commit(repo, "change parse")
    prompt = run_cli(repo, "recall", "parser whitespace", "-k", "1", "--prompt").out
    assert "## Note\ndrifted: src/parser.py:parse changed since" in prompt
    assert "verify this memory against the code" in prompt
    explained = json.loads(run_cli(repo, "recall", "parser whitespace", "-k", "1", "--json", "--explain").out)
    assert explained["results"][0]["explain"]["cites"] == "drifted"


def test_a_memory_without_citations_keeps_the_coarse_paths_note(repo: Path, code: str) -> None:
    result = run_cli(
        repo, "add", "-t", "The parser splits on whitespace", "-d", "When parsing input text.", "-c", "Tokens.",
        "--source-commit", code, "--source-path", "src/parser.py",
    )  # fmt: skip
    assert result.code == 0, result.output
    commit(repo, "memory")
    write(repo / "src" / "parser.py", PARSER + "\n# end\n")
    commit(repo, "edit")
    hit = json.loads(run_cli(repo, "recall", "parser whitespace", "--json").out)["results"][0]
    assert hit["notes"] == [f"possibly stale: src/parser.py changed since {code[:10]}"]
    assert "citations" not in hit


# --- the cache ----------------------------------------------------------------------------------------------


def test_the_cache_answers_a_second_check_and_the_one_after_a_hook_with_no_git_work(repo: Path, code: str) -> None:
    from mtlgit.hooks import refresh
    from mtlgit.repo import find_repo

    add_memory(repo, "src/parser.py:parse")
    found = find_repo(repo)
    record = json.loads(run_cli(repo, "list", "--json").out)
    memories = record["memories"] if isinstance(record, dict) else record
    before = citations.COUNTERS["git"]
    first = citations.states(repo, found.worktree_state_dir, memories)
    assert citations.COUNTERS["git"] - before == 2  # cat-file --batch-check, then --batch
    before = citations.COUNTERS["git"]
    again = citations.states(repo, found.worktree_state_dir, memories)
    assert citations.COUNTERS["git"] - before == 0
    assert again[0].to_json() == first[0].to_json()
    write(repo / "src" / "parser.py", PARSER.replace("split()", "split(' ')"))
    commit(repo, "change parse")
    refresh(found, "post-commit")  # what the post-commit hook runs
    before = citations.COUNTERS["git"]
    warm = citations.states(repo, found.worktree_state_dir, memories)
    assert citations.COUNTERS["git"] - before == 0
    assert warm[0].state == "drifted"


def test_head_tree_read_from_files_matches_git_and_falls_back_when_packed(repo: Path, code: str) -> None:
    from mtlgit.repo import find_repo

    found = find_repo(repo)
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    before = citations.COUNTERS["git"]
    assert citations.head_tree(repo, "HEAD", found.git_dir) == tree
    assert citations.COUNTERS["git"] == before
    git(repo, "gc", "-q")  # packs the ref and the commit: git must answer
    assert citations.head_tree(repo, "HEAD", found.git_dir) == tree
    assert citations.COUNTERS["git"] == before + 1
    git(repo, "worktree", "add", "-q", str(repo.parent / "other"), "-b", "other")
    write(repo.parent / "other" / "x.py", "x = 1\n")
    other_tree = commit(repo.parent / "other", "other")
    other = find_repo(repo.parent / "other")
    assert (
        citations.head_tree(repo.parent / "other", "HEAD", other.git_dir)
        == git(repo.parent / "other", "rev-parse", f"{other_tree}^{{tree}}").strip()
    )


# --- review, lint, retire, edit -----------------------------------------------------------------------------


def test_review_lists_the_hunk_and_check_fails_on_a_memory_the_branch_orphans(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:tail")
    add_memory(repo, "src/parser.py:Reader", title="Reader reads the whole file at once")
    git(repo, "checkout", "-q", "-b", "feature")
    text = PARSER.replace("return parse(handle.read())", "return parse(handle.read(4096))")
    write(repo / "src" / "parser.py", text.split("\n\ndef tail")[0] + "\n")
    commit(repo, "stream reads, drop tail")
    result = run_cli(repo, "review", "main..feature", "--check")
    assert result.code == 1, result.output
    out = result.out
    assert "### Memories about code this branch changes" in out
    assert "`src/parser.py:Reader`: fresh → drifted" in out
    assert "-            return parse(handle.read())" in out
    assert "+            return parse(handle.read(4096))" in out
    assert "**orphaned by this branch**" in out and "`src/parser.py:tail`: fresh → orphaned" in out
    assert "-    return items[-1]" in out
    data = json.loads(run_cli(repo, "review", "main..feature", "--json").out)
    assert data["orphaned_by_branch"] == 1
    config = repo / ".mtlgit.yaml"
    config.write_text(config.read_text() + "review:\n  orphans: warn\n")
    assert run_cli(repo, "review", "main..feature", "--check").code == 0
    config.write_text(config.read_text().replace("orphans: warn", "orphans: maybe"))
    bad = run_cli(repo, "review", "main..feature", "--check")
    assert bad.code != 0 and "'review.orphans' must be fail or warn" in bad.err


def test_lint_stale_lists_drifted_and_orphaned_memories_only(repo: Path, code: str) -> None:
    add_memory(repo, "src/parser.py:tail", title="Tail returns the last item")
    add_memory(repo, "src/parser.py:parse", title="The parser splits on whitespace")
    add_memory(repo, "src/parser.py:Reader", title="Reader reads the whole file")
    write(repo / "src" / "parser.py", PARSER.replace("split()", "split(',')").split("\n\ndef tail")[0] + "\n")
    commit(repo, "change parse, drop tail")
    result = run_cli(repo, "lint", "--stale")
    assert result.code == 0, result.output
    lines = [line for line in result.out.splitlines() if ": warning: " in line]
    assert len(lines) == 2, result.out
    assert any("warning: orphaned: src/parser.py:tail" in line and line.endswith("[orphaned]") for line in lines)
    assert any("warning: drifted: src/parser.py:parse" in line and line.endswith("[drifted]") for line in lines)
    assert run_cli(repo, "lint", "--stale", "--strict").code == 1


def test_retire_and_edit_say_when_a_memory_is_orphaned(repo: Path, code: str) -> None:
    memory = add_memory(repo, "src/parser.py:tail")
    write(repo / "src" / "parser.py", PARSER.split("\n\ndef tail")[0] + "\n")
    commit(repo, "drop tail")
    edit = run_cli(repo, "edit", memory["id"], env={"EDITOR": "true", "VISUAL": "true"})
    assert edit.code == 0, edit.output
    assert f"note: {memory['path']} is orphaned: src/parser.py:tail is no longer defined" in edit.err
    retire = run_cli(repo, "retire", memory["id"])
    assert retire.code == 0, retire.output
    assert "is orphaned: src/parser.py:tail" in retire.err


def test_add_json_takes_the_cites_prompt_extract_asks_for(repo: Path, code: str) -> None:
    assert "cites" in run_cli(repo, "prompt", "extract", "--outcome", "success").out
    items = [
        {
            "title": "Reader reads the whole file at once",
            "description": "When reading big input files.",
            "content": "Stream instead.",
            "cites": ["src/parser.py:Reader.read"],
        }
    ]
    wrong = {
        "title": "Writers flush",
        "description": "When writing.",
        "content": "x",
        "cites": ["src/parser.py:Writer"],
    }
    bad_source = {"title": "Odd source", "description": "When odd.", "content": "y", "source": "nope", "cites": []}
    # Citations written inside the source are checked and given a commit the same way.
    wrong_in_source = {
        "title": "Sprockets jam when dry",
        "description": "When the sprocket assembly squeals.",
        "content": "z",
        "source": {"cites": ["src/nope.py:g"]},
    }
    result = run_cli(repo, "add", "--json", "-", input=json.dumps([wrong, *items, bad_source, wrong_in_source]))
    assert result.code == 1, result.output
    report = json.loads(result.out)
    assert [(i["item"], i["added"]) for i in report["items"]] == [(1, False), (2, True), (3, False), (4, False)]
    assert "src/nope.py" in report["items"][3]["reasons"][0]
    assert report["items"][0]["reasons"] == [
        f"source.cites: 'Writer' is not defined in src/parser.py at {code[:10]}: cite the function or class name as "
        "written in its definition, or cite lines instead"
    ]
    assert "'source' must be an object" in report["items"][2]["reasons"][0]
    commit(repo, "memory")
    listed = run_cli(repo, "list", "--json").out
    assert '"symbol": "Reader.read"' in listed and code in listed


# --- finding symbols and mapping lines ----------------------------------------------------------------------

SOURCES = {
    "a.ts": (
        "export async function load(url: string) {\n  return fetch(url);\n}\n"
        "export class Store {\n  get(key: string): number {\n    return 1;\n  }\n}\n"
        "const helper = (x) => {\n  return x;\n};\n"
    ),
    "b.go": (
        "package b\n\nfunc (s *Server) Serve(w io.Writer) error {\n\treturn nil\n}\n\n"
        "type Server struct {\n\tn int\n}\n"
    ),
    "c.rs": "pub fn parse(s: &str) -> u32 {\n    0\n}\n\nimpl Display for Token {\n    fn fmt(&self) {}\n}\n",
    "D.java": (
        "public class Parser {\n    public static List<String> split(String s) {\n        return null;\n    }\n"
        '    void use() {\n        return split("x");\n    }\n}\n'
    ),
}


@pytest.mark.parametrize(
    ("path", "symbol", "span"),
    [
        ("a.ts", "load", (0, 3)),
        ("a.ts", "Store", (3, 8)),
        ("a.ts", "Store.get", (4, 7)),
        ("a.ts", "helper", (8, 11)),
        ("b.go", "Serve", (2, 5)),
        ("b.go", "Server", (6, 9)),
        ("c.rs", "parse", (0, 3)),
        ("c.rs", "Token", (4, 7)),
        ("D.java", "split", (1, 4)),
        ("D.java", "Parser.use", (4, 7)),
    ],
)
def test_symbols_are_found_in_each_language(path: str, symbol: str, span: tuple[int, int]) -> None:
    assert find_symbol(path, SOURCES[path].split("\n"), symbol) == span


def test_a_call_is_not_a_definition() -> None:
    lines = ["def main():", "    parse(x)", "    return tail(x)"]
    assert find_symbol("m.py", lines, "parse") is None
    assert find_symbol("m.java", ["    return split(x);"], "split") is None
    assert find_symbol("m.ts", ["  render(view)", "  render(view) {", "  }"], "render") == (1, 3)


def test_line_mapping_and_specs() -> None:
    old = ["a", "b", "c", "d"]
    assert map_lines(old, ["x", "a", "b", "c", "d"], 2, 3) == ("fresh", (3, 4))
    assert map_lines(old, ["a", "b", "x", "c", "d"], 2, 3)[0] == "drifted"
    assert map_lines(old, ["a", "b", "c", "x", "d"], 2, 3) == ("fresh", (2, 3))
    assert map_lines(old, old, 3, 9)[0] == "orphaned"
    assert parse_spec("src/a.py:Reader.read").symbol == "Reader.read"
    assert parse_spec("src/a.py:10-24").lines == (10, 24)
    assert parse_spec("src/a.py:7").lines == (7, 7)
    with pytest.raises(ValueError, match="1 <= first <= last"):
        parse_spec("src/a.py:9-3")


def test_git_missing_commit_says_nothing(repo: Path, code: str) -> None:
    memory = {"source": {"commit": "0" * 40, "cites": [{"path": "src/parser.py", "symbol": "parse"}]}}
    assert citations.check(repo, [memory]) == {}
    assert subprocess.run(["git", "cat-file", "-e", "0" * 40], cwd=repo).returncode != 0


def test_mcp_takes_citations_and_shows_their_state(repo: Path, code: str) -> None:
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")
    import anyio

    async def session() -> None:
        import os
        import sys

        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
        )
        async with Client(params, read_timeout_seconds=120) as client:
            item = {
                "title": "The parser splits on whitespace",
                "description": "When parsing input text.",
                "content": "Tokens are separated by whitespace.",
                "cites": ["src/parser.py:parse"],
            }
            added = await client.call_tool("add_memories", {"items": [item]})
            assert added.structured_content["added"] == 1, added.structured_content
            fresh = await client.call_tool("recall", {"query": "parser whitespace", "k": 1, "min_confidence": 0})
            assert fresh.structured_content["results"][0]["citations"]["state"] == "fresh"
            assert "The code it cites (src/parser.py:parse) is unchanged" in "".join(
                getattr(block, "text", "") for block in fresh.content
            )
            write(repo / "src" / "parser.py", PARSER.replace("split()", "split(';')"))
            commit(repo, "change parse")
            drifted = await client.call_tool("recall", {"query": "parser whitespace", "k": 1, "min_confidence": 0})
            assert drifted.structured_content["results"][0]["citations"]["state"] == "drifted"
            text = "".join(getattr(block, "text", "") for block in drifted.content)
            assert "drifted: src/parser.py:parse changed since" in text

    anyio.run(session)
