"""Memory transfer: formats, extraction prompts, agent JSON, abstraction lint, dedup, import/export, stats."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from mtlgit.abstraction import specificity
from mtlgit.applicability import when_problems
from tests.conftest import SHARED_DATA, TEST_DATA, git, run_cli, write

HEREDOC_INSIGHT = (
    "Validate a fix with a self-contained here-doc test. Before calling a fix done, run a minimal inline test "
    "of the changed behaviour. Write a short battery of checks in an inline `python - <<'EOF'` block covering "
    "the normal case, an edge case and the reported failure; run it before and after the change."
)
TRAJECTORY_STEP = (
    "ls -la data && nl -ba evaluate.py | sed -n '1,120p'. Observation: evaluate.py reads data/test.csv and "
    "computes accuracy at line 42, so I ran python evaluate.py --split test."
)
GOOD_ITEM = {
    "title": "Check the installed version before using an API",
    "description": "When a library call fails with an unexpected keyword or attribute.",
    "content": "Print the installed version and read that version's documentation or signature first.",
    "format": "insight",
    "domains": ["javascript"],
    "tags": ["api"],
    "outcome": "failure",
}


def added(cli, title: str, content: str, *flags: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    args = ["add", "-t", title, "-d", "When it applies.", "-c", content, "--json", *flags]
    result = cli(*args)
    assert result.code == 0, result.output
    return json.loads(result.out)  # type: ignore[no-any-return]


def test_the_paper_examples_score_as_expected() -> None:
    assert specificity(HEREDOC_INSIGHT).score < 0.1
    trajectory = specificity(TRAJECTORY_STEP)
    assert trajectory.score > 0.9
    assert {"path", "line", "command"} <= set(trajectory.found)


SITUATIONS = (
    "When a Makefile recipe fails with 'missing separator', Python raises `TabError` or `IndentationError`, "
    "`git diff --stat` shows every line changed, or a YAML or `package.json` file stops parsing after an edit."
)


def test_concrete_situation_words_in_the_description_cost_nothing() -> None:
    lesson = "Match the file's indentation and line endings.\nCopy the surrounding whitespace exactly."
    assert specificity(lesson + "\n" + SITUATIONS).too_specific  # scored as one text, as before
    scored = specificity(lesson, when=SITUATIONS)
    assert scored.score == specificity(lesson).score == 0.0
    system = specificity(lesson, when="When writing under /tmp, /dev/null or ~/.bashrc fails.")
    assert system.score == 0.0


def test_a_task_named_anywhere_still_counts() -> None:
    # Content naming one task's files and lines is flagged however long the list of situations is.
    assert specificity(TRAJECTORY_STEP, when=SITUATIONS + " " + SITUATIONS).too_specific
    tied = "When fixing django__django-16032 in django/db/models/sql/query.py after 4f2c1a9, see https://x.org/1."
    scored = specificity(HEREDOC_INSIGHT, when=tied)
    assert scored.too_specific and {"issue", "path", "hash", "url"} <= set(scored.found)
    assert scored.found["path"] == ["django/db/models/sql/query.py"]


def test_lint_accepts_an_insight_whose_description_names_situations(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    title, content = "Match the file's indentation and line endings", "Copy the surrounding whitespace exactly."
    result = cli("add", "-t", title, "-d", SITUATIONS, "-c", content, "--json")
    assert result.code == 0 and json.loads(result.out)["warnings"] == [], result.output
    assert cli("lint", "--strict").code == 0


def test_lint_warns_about_task_specific_insights_only(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    specific = added(cli, "Patch line 42 of evaluate.py", TRAJECTORY_STEP, "--force")
    assert "reads as task-specific" in " ".join(specific["warnings"])  # type: ignore[arg-type]
    lint = cli("lint")
    assert lint.code == 0 and "reads as task-specific (score" in lint.out and "too-specific" in lint.out
    assert cli("lint", "--strict").code == 1
    trajectory = cli("add", "-f", "trajectory", "-t", "A run on the evaluation task", "-c", TRAJECTORY_STEP, "--force")
    assert trajectory.code == 0
    assert "memories/trajectory/" not in cli("lint").out


def test_extract_prompt_then_agent_json_then_recall_prompt(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    instructions = cli("prompt", "extract", "--outcome", "failure")
    assert instructions.code == 0
    text = instructions.out
    assert "The attempt FAILED" in text and "would have prevented" in text
    assert "Never mention file names" in text and "mtlgit add --items -" in text
    example = json.loads(text[text.index("[\n") : text.index("\n]") + 2])
    assert example[0]["format"] == "insight" and example[0]["outcome"] == "failure"
    answer = (
        "Here are my memories:\n```json\n"
        + json.dumps(
            [
                GOOD_ITEM,
                {"description": "no title here", "content": "x"},
                {**GOOD_ITEM, "id": "01JDQ2V6R3J8Z6TT4M0S3W4K9B", "title": "With an id"},
                {"title": "Workflow without a goal", "description": "d", "content": "1. a", "format": "workflow"},
            ]
        )
        + "\n```\n"
    )
    stored = cli("add", "--json", "-", input=answer)
    assert stored.code == 1
    report = json.loads(stored.out)
    assert (report["added"], report["rejected"]) == (1, 3)
    reasons = [" ".join(item.get("reasons", [])) for item in report["items"]]
    assert reasons[0] == ""
    assert "'title' is missing" in reasons[1]
    assert "id cannot be set" in reasons[2]
    assert "missing required field 'goal'" in reasons[3]
    recalled = cli("recall", "library call fails with an unexpected keyword", "--prompt", "-k", "1").out
    assert "# Memory Item 1\n## Note\nLearned from a failed attempt.\n## Title\n```\n" + GOOD_ITEM["title"] in recalled
    again = cli("add", "--json", "-", input=json.dumps(GOOD_ITEM))
    assert again.code == 1 and "identical to" in json.loads(again.out)["items"][0]["reasons"][0]


@pytest.mark.parametrize("fmt", ["insight", "workflow", "summary"])
def test_extract_asks_for_the_situations_in_task_words(repo: Path, cli, fmt: str) -> None:  # type: ignore[no-untyped-def]
    text = cli("prompt", "extract", "--outcome", "failure", "--format", fmt).out
    asks = "error and exception names" in text and "start with 'When ...'" in text
    assert asks == (fmt != "summary")  # a summary records one task and has no description
    if fmt == "summary":
        return
    example = json.loads(text[text.index("[\n") : text.index("\n]") + 2])[0]
    assert when_problems(fmt, example["title"], example["description"]) == []
    stored = cli("add", "--json", "-", input=json.dumps([example]))
    assert stored.code == 0 and json.loads(stored.out)["items"][0].get("warnings") is None, stored.output
    assert cli("lint", "--strict").code == 0
    # A task that words the situation its own way finds the item by the words of its description.
    task = "Traceback (most recent call last): ... segfault in the parser; expected X but got Y"
    assert json.loads(cli("recall", task, "--json", "-k", "1").out)["results"][0]["title"] == example["title"]


@pytest.mark.parametrize("fmt", ["workflow", "summary"])
def test_other_formats_get_their_templates_and_prompt_warnings(cli, fmt: str) -> None:  # type: ignore[no-untyped-def]
    instructions = cli("prompt", "extract", "--outcome", "success", "--format", fmt).out
    assert ("numbered steps" in instructions) if fmt == "workflow" else ("## Experience" in instructions)
    item = {
        "title": f"A {fmt} about flaky network tests",
        "description": "When tests flake.",
        "format": fmt,
        "content": ["Rerun the test in a loop", "Record failures"]
        if fmt == "workflow"
        else "## Task\nStabilise flaky network tests.\n## Experience\nMocking the server fixed it.",
        "goal": "Make the suite deterministic",
    }
    result = cli("add", "--json", "-", input=json.dumps([item]))
    assert result.code == 0, result.output
    prompt = cli("recall", "flaky network tests", "--prompt", "-k", "1").out
    if fmt == "workflow":
        assert "## Goal\n```\nMake the suite deterministic\n```" in prompt and "1. Rerun the test in a loop" in prompt
        assert "check each step before you follow it" in prompt
    else:  # the memory's own headings are shown as written, inside the fence of its content
        assert "## Content\n```\n## Task\nStabilise flaky network tests.\n## Experience\n" in prompt


def test_dedup_and_supersede(cli) -> None:  # type: ignore[no-untyped-def]
    first = added(cli, "Reproduce the failure before changing code", "Run the reported steps and watch them fail.")
    added(cli, "Quote shell variables", "Put double quotes around every variable expansion in shell scripts.")
    refused = cli(
        "add",
        "-t",
        "Reproduce the failure before changing code",
        "-d",
        "When it applies.",
        "-c",
        "Run the reported steps and watch them fail.",
    )
    assert refused.code == 1 and f"identical to {first['id']}" in refused.err
    second = added(
        cli, "Reproduce the failure before changing code", "Run the reported steps and watch them fail.", "--force"
    )
    pairs = json.loads(cli("dedup", "--json").out)
    assert len(pairs) == 1 and {pairs[0]["a"]["id"], pairs[0]["b"]["id"]} == {first["id"], second["id"]}
    assert cli("retire", str(second["id"]), "--superseded-by", str(first["id"])).code == 0
    assert json.loads(cli("dedup", "--json").out) == []
    assert "No near-duplicates among" in cli("dedup").out


def test_import_reads_three_kinds_and_changes_no_source(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "sources"
    write(
        source / "bank.jsonl",
        json.dumps(GOOD_ITEM)
        + "\nnot json\n"
        + json.dumps(
            {
                "memory_items": [
                    {
                        "title": "Read the docs of the exact version",
                        "description": "When using a library.",
                        "content": "Open the documentation of the version you have installed.",
                    }
                ]
            }
        )
        + "\n",
    )
    write(
        source / "react-cursorrules-prompt-file" / "hooks.mdc",
        "---\ndescription: Rules for React hooks.\nglobs: **/*.tsx\n---\n- Call hooks at the top level only.\n"
        "- Name custom hooks with a use prefix.\n",
    )
    write(
        source / "react-cursorrules-prompt-file" / ".cursorrules",
        "# Style\nPrefer function components over classes.\n\n# Testing\nTest behaviour with Testing Library.\n",
    )
    write(
        source / "CLAUDE.md",
        "# Project\nThis is a web app.\n\n## Conventions\n- Run the linter before "
        "committing.\n- Keep functions under fifty lines.\n",
    )
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()}
    result = cli("import", str(source), "--json")
    assert result.code == 1, result.output  # two sources skipped
    report = json.loads(result.out)
    assert report["imported"] == 6
    skips = {s["source"]: s["reason"] for s in report["skips"]}
    assert skips["bank.jsonl:2"].startswith("not JSON")
    assert skips["CLAUDE.md#1"] == "section without a bullet list"
    hooks = json.loads(cli("recall", "react hooks top level", "--json", "-k", "1").out)["results"][0]
    # The rule's scope: its folder's name and the language of its globs are domains, the globs are kept.
    assert hooks["title"] == "Rules for React hooks." and hooks["domains"] == ["react", "typescript"]
    assert hooks["description"] == "When working with react (TypeScript): Rules for React hooks."
    assert hooks["source"]["extra"] == {"globs": ["**/*.tsx"]}
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*") if p.is_file()}
    assert after == before
    again = json.loads(cli("import", str(source), "--json").out)
    assert again["imported"] == 0 and all(
        any(word in s["reason"] for word in ("near-duplicate", "identical to", "not JSON", "bullet"))
        for s in again["skips"]
    )


def test_export_stats_and_the_starter_pool(tmp_path: Path) -> None:
    repo = tmp_path / "starter"
    repo.mkdir()
    git(repo, "init", "-q")
    init = run_cli(repo, "init", "--no-hooks", "--starter")
    assert init.code == 0 and "Copied" in init.out
    assert run_cli(repo, "lint", "--strict").code == 0
    stats = json.loads(run_cli(repo, "stats", "--json").out)
    assert stats["memories"] >= 40
    assert stats["format"]["insight"] >= 40
    assert len(stats["domain"]) >= 8
    exported = run_cli(repo, "export").out.splitlines()
    assert len(exported) == stats["memories"]
    first = json.loads(exported[0])
    assert {"title", "description", "content", "id", "format"} <= set(first)
    assert "pool" in stats and stats["pool"] == {"local": stats["memories"]}


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "cursor-rules").is_dir(), reason="third-party data not found")
def test_import_every_cursor_rule(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    rules = SHARED_DATA / "cursor-rules" / "rules"
    result = cli("import", str(rules), "--json")
    report = json.loads(result.out)
    assert result.code == (1 if report["skipped"] else 0), result.err  # README, "Exit codes"
    files = [p for p in rules.rglob("*") if p.is_file()]
    sources = {m["source"].split("#")[0] for m in report["memories"]} | {
        s["source"].split("#")[0].split(":")[0] for s in report["skips"]
    }
    assert len(sources) == len(files)
    assert report["imported"] > 500
    assert all(s["reason"] for s in report["skips"])
    assert cli("lint").code == 0


# --- issue 12: false alarms that dropped real content, and what the messages say ---------------------------

ZOD_RULE = """---
description: Validate configuration with zod.
globs: src/**/*.ts
---
# Configuration

Validate the environment once at start-up:

```ts
const env = z.object({
  API_KEY: z.string().min(1),
  password: z.string().min(8),
});
```

Pin actions to a full commit SHA, e.g. actions/checkout@8e5e7e5ab8b370d6c329ec480221332ada57f0ab.
"""
TOKEN = "ghp_" + "Xq7Lm2Np9Rs4Tv6Wy8Za1Bc3De5Fg7Hi9Jk0L"


def test_zod_schemas_and_example_hashes_are_imported(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "rules" / "zod.mdc", ZOD_RULE)
    report = json.loads(cli("import", str(tmp_path / "rules"), "--json").out)
    assert report["imported"] == 1, report


def test_an_import_skip_names_the_source_line_and_the_allow_marker_works_there(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rule = write(tmp_path / "rules" / "deploy.mdc", ZOD_RULE + f"\nThe bot uses {TOKEN} to push.\n")
    line = rule.read_text().split("\n").index(f"The bot uses {TOKEN} to push.") + 1
    cursorrules = write(
        tmp_path / "rules" / ".cursorrules", f"# Style\nShort lines.\n\n# Deploy\nSecond.\nUse {TOKEN}.\n"
    )
    report = json.loads(cli("import", str(tmp_path / "rules"), "--json", "--dry-run").out)
    reasons = {s["source"]: s["reason"] for s in report["skips"]}
    assert f"on line {line} of deploy.mdc" in reasons["deploy.mdc"], reasons
    assert "on line 6 of .cursorrules" in reasons[".cursorrules#2"], reasons
    assert TOKEN not in json.dumps(report)
    rule.write_text(rule.read_text().replace(" to push.", " to push. <!-- pragma: allowlist secret -->"))
    cursorrules.write_text(cursorrules.read_text().replace(f"{TOKEN}.", f"{TOKEN}. # pragma: allowlist secret"))
    again = json.loads(cli("import", str(tmp_path / "rules"), "--json").out)
    assert again["imported"] == 3 and again["skipped"] == 0, again


def test_a_dry_run_runs_every_check_of_the_real_run(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bank = tmp_path / "bank.jsonl"
    items = [
        GOOD_ITEM,
        {**GOOD_ITEM, "title": "Check the installed version before using its API"},  # a near-duplicate of the first
        {"title": "Deploy", "description": "When deploying.", "content": f"Use {TOKEN} for the push."},  # a secret
        {"title": "Deploy", "description": "When deploying.", "content": "   "},  # no content
        {"title": "Bad", "description": "When.", "content": "Text.", "format": "novel"},  # not a format
        {
            "title": "Prefer small commits",
            "description": "When committing work.",
            "content": "One logical change per commit makes bisecting easy.",
        },
    ]
    write(bank, "".join(json.dumps(i) + "\n" for i in items))
    dry = cli("import", str(bank), "--dry-run")
    real = cli("import", str(bank))
    assert dry.code == real.code == 1  # four items skipped
    assert dry.out.splitlines()[-1] == "would import 2, skipped 4", dry.out
    assert real.out.splitlines()[-1] == "imported 2, skipped 4", real.out

    # The same reasons, but for the id and the file name of the near-duplicate (written anew by each run).
    def same(out: str) -> list[str]:
        return [re.sub(r"[0-9A-Z]{26}|-[0-9a-z]{8}\.md", "", line) for line in out.splitlines()[:-1]]

    assert same(dry.out) == same(real.out)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "cursor-rules-mdc").is_dir(), reason="third-party data not found")
def test_the_cursor_guides_are_not_refused_as_secrets(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Importing the 243 guides refused 44 as secrets (zod schemas, example hashes); 2 are left: a base64 value in
    a Kubernetes Secret manifest and an `API_KEY: "sk_test_12345"` shown as what not to do."""
    # --force: the near-duplicate checks of three thousand sections are not what this test is about.
    result = cli("import", str(SHARED_DATA / "cursor-rules-mdc" / "rules-mdc"), "--json", "--dry-run", "--force")
    report = json.loads(result.out)
    refused = sorted(s["source"] for s in report["skips"] if "contains a" in s["reason"])
    assert [source.split("#")[0] for source in refused] == ["github-actions.mdc", "kubernetes.mdc"], refused


# --- issue 15: long guides, near-duplicates of long documents, export -> import ----------------------------

GUIDES = TEST_DATA / "guides"
MDC = SHARED_DATA / "cursor-rules-mdc" / "rules-mdc"


def whole_guide(path: Path) -> dict[str, object]:
    """A guide as one memory, the way mtlgit 0.1 imported it: the description cut as the title."""
    _fence, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
    description = front.split("description:", 1)[1].split("\n", 1)[0].strip()
    return {
        "title": description[:99].rsplit(" ", 1)[0] + "…",
        "description": description,
        "content": body.strip(),
        "domains": ["rules"],
        "tags": ["cursor-rule"],
    }


def near_duplicates_of_whole(cli, tmp_path: Path, first: Path, second: Path) -> tuple[dict, list]:  # type: ignore[no-untyped-def]
    bank = write(
        tmp_path / "guides.jsonl", json.dumps(whole_guide(first)) + "\n" + json.dumps(whole_guide(second)) + "\n"
    )
    report = json.loads(cli("import", str(bank), "--json").out)
    return report, json.loads(cli("dedup", "--json").out)


def test_two_long_guides_on_neighbouring_topics_are_not_near_duplicates(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Whole, the two guides have a cosine of 0.90 and share 0.27 of their terms: one was refused before."""
    report, pairs = near_duplicates_of_whole(cli, tmp_path, GUIDES / "containers.mdc", GUIDES / "compose.mdc")
    assert (report["imported"], report["skips"]) == (2, []), report
    assert pairs == []
    # A long document imported twice is still a near-duplicate, by its shared terms.
    again = write(
        tmp_path / "again.jsonl", json.dumps({**whole_guide(GUIDES / "compose.mdc"), "title": "Compose"}) + "\n"
    )
    twice = json.loads(cli("import", str(again), "--json").out)
    assert twice["imported"] == 0 and "near-duplicate of" in twice["skips"][0]["reason"]


@pytest.mark.skipif(not MDC.is_dir(), reason="third-party data not found (../shared/data/cursor-rules-mdc)")
@pytest.mark.parametrize(("first", "second"), [("aws-ecs", "docker"), ("bash", "zsh")])
def test_real_long_guides_are_not_near_duplicates(repo: Path, cli, tmp_path: Path, first: str, second: str) -> None:  # type: ignore[no-untyped-def]
    report, pairs = near_duplicates_of_whole(cli, tmp_path, MDC / f"{first}.mdc", MDC / f"{second}.mdc")
    assert report["imported"] == 2, report
    assert pairs == []


def test_long_guides_import_as_an_overview_and_insight_sized_sections(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules-mdc"
    for name in ("containers.mdc", "compose.mdc"):
        write(rules / name, (GUIDES / name).read_text())
    report = json.loads(cli("import", str(rules), "--json").out)
    assert report["skipped"] == 0 and report["imported"] == 2 + 13 + 12, report
    assert cli("lint", "--strict").code == 0
    memories = {m["title"]: m for m in json.loads(cli("list", "--json").out)}
    overview = memories["Container Image Guidelines"]
    assert overview["domains"] == ["containers", "yaml"]
    assert overview["description"].startswith("When working with containers (Dockerfile, YAML): Rules for the")
    assert overview["source"]["extra"] == {"globs": ["**/Dockerfile", "**/compose*.{yml,yaml}"]}
    assert "Sections: Use the Same Image in Every Environment; Pin the Base Image;" in overview["content"]
    section = memories["containers: Run as an Unprivileged User"]
    assert section["content"] == (
        "Create a dedicated user in the image and switch to it before the entry point. A process that runs as "
        "root inside the container turns a small bug into a host compromise."
    )  # the code example stays in the guide
    assert section["source"]["task"].startswith("containers.mdc#")
    assert all(len(m["content"]) <= 1200 and "```" not in m["content"] for m in memories.values())
    assert not [t for t in memories if t.endswith("…")]
    hits = json.loads(cli("recall", "the app container runs as root, make it safer", "--json", "-k", "3").out)
    assert "containers: Run as an Unprivileged User" in [h["title"] for h in hits["results"]]
    prompt = cli("recall", "the app container runs as root, make it safer", "--prompt", "-k", "3").out
    assert len(prompt.encode()) < 5000


def test_export_then_import_gives_back_the_same_memories(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kept = added(cli, "Reproduce the failure before changing code", "Run the reported steps and watch them fail.")
    old = added(cli, "Reproduce the failure first", "Run the reported steps and watch them fail first.", "--force")
    gone = added(cli, "Prefer print debugging", "Print the values where the bug shows.")
    assert cli("retire", str(old["id"]), "--superseded-by", str(kept["id"])).code == 0
    assert cli("retire", str(gone["id"])).code == 0
    exported = tmp_path / "pool.jsonl"
    assert cli("export", "--all", "-o", str(exported)).code == 0
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    assert run_cli(other, "init", "--no-hooks").code == 0
    first = run_cli(other, "import", str(exported))
    assert first.code == 0 and first.out == "imported 3, skipped 0\n", first.output
    for memory in (kept, old, gone):  # byte for byte: ids, dates, status, supersession, file names
        assert (other / str(memory["path"])).read_bytes() == (repo / str(memory["path"])).read_bytes()
    again = run_cli(other, "import", str(exported))
    assert again.code == 1 and again.out.splitlines()[-1] == "imported 0, skipped 3"
    assert f": id {kept['id']} is already in the pool ({kept['path']})\n" in again.out
    assert "cannot be set" not in again.output
    empty = write(tmp_path / "empty.jsonl", "")
    nothing = run_cli(other, "import", str(empty))  # an empty batch is a user error (README, "Exit codes")
    assert nothing.code == 1 and "nothing to import" in nothing.err, nothing.output


def test_show_names_a_merge_conflict(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    memory = added(cli, "Shared lesson", "Original wording.")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base", "--no-verify")
    path = repo / str(memory["path"])
    git(repo, "checkout", "-qb", "a")
    path.write_text(path.read_text().replace("Original wording.", "Wording from a."))
    git(repo, "commit", "-qam", "a", "--no-verify")
    git(repo, "checkout", "-q", "main")
    path.write_text(path.read_text().replace("Original wording.", "Wording from main."))
    git(repo, "commit", "-qam", "main", "--no-verify")
    assert subprocess.run(["git", "merge", "-q", "a"], cwd=repo, capture_output=True).returncode != 0
    shown = cli("show", str(memory["id"]))
    assert shown.code == 1 and "Traceback" not in shown.output
    assert f"{memory['path']} holds '{memory['id']}' but has unresolved merge conflict markers" in shown.err
    assert "no memory has the id" in cli("show", "01ZZZZZZ").err
