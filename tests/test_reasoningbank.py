"""ReasoningBank records: every shape public implementations write is imported with its task, query, outcome and
other fields; export and import give the same memories back, ids, dates, status and supersession included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mtlgit.importers import markdown_items, outcome_of
from tests.conftest import git, run_cli, write

DATA = Path(__file__).parent / "data" / "reasoningbank"


def fresh_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    assert run_cli(path, "init").code == 0
    config = path / ".mtlgit.yaml"
    config.write_text(config.read_text("utf-8").replace("recall:\n", "recall:\n  min_confidence: 0\n"), "utf-8")
    return path


def exported(repo: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(repo, "export", *args)
    assert result.code == 0, result.output
    return sorted((json.loads(line) for line in result.out.splitlines()), key=lambda m: m["id"])


def imported(repo: Path, path: Path) -> dict[str, Any]:
    result = run_cli(repo, "import", str(path), "--json")
    report: dict[str, Any] = json.loads(result.out)
    assert result.code == (1 if report["skipped"] else 0), result.output
    return report


def by_title(memories: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["title"]: m for m in memories}


def test_every_shape_keeps_task_query_outcome_and_other_fields(repo: Path) -> None:
    report = imported(repo, DATA)
    skips = {s["source"]: s["reason"] for s in report["skips"]}
    assert report["imported"] == 13, skips
    assert "description" in skips["flat_items.jsonl:5"] and skips["flat_items.jsonl:6"] == "no content"
    memories = by_title(exported(repo))

    # google-research ReasoningBank: Markdown items, one split over two strings; status success / fail.
    order = memories["Open the account's order history before searching"]
    assert order["outcome"] == "success" and order["source"]["task"] == "118"
    assert order["source"]["query"] == "List the five most recent orders of the customer Ana Müller"
    assert order["description"].startswith("When a task asks about one customer")
    assert order["content"].startswith("Go to the customer's own order history")
    assert order["source"]["extra"] == {
        "think_list": ["open the customer page"],
        "action_list": ["click('42')"],
        "template_id": 7,
    }
    assert "Check the sort order of a table before reading its top rows" in memories
    edit = memories["Confirm an edit form was saved before reporting success"]
    assert edit["outcome"] == "failure" and edit["source"]["query"].endswith("Straße 5, Köln")

    # budprat/ReasoningBank: an entry's items; the item's own task id and success signal win.
    power = memories["Apply exponentiation before floor division"]
    assert power["outcome"] == "failure" and power["source"]["task"] == "arith_9"
    assert power["source"]["query"] == "What is 2 ** 10 // 3?"
    assert power["source"]["extra"]["success"] is False and power["source"]["extra"]["extraction_timestamp"] is None

    # SelfEvolveAgent: content as a list of steps, task and outcome in provenance, kept whole.
    filters = memories["Prefer the site's own filters over free-text search"]
    assert filters["outcome"] == "success" and filters["source"]["task"] == "shopping_12"
    assert filters["content"].startswith("1. Open the filter panel first\n2. ")
    assert filters["source"]["extra"]["embedding"] == [0.125, -0.5, 0.25]
    assert memories["Stop scrolling an endless feed and search instead"]["outcome"] == "failure"

    # ReasoningBank-MCP: one JSON document listing memories with query, success and tags.
    migration = memories["Run the migration on a copy of the data first"]
    assert migration["outcome"] == "failure" and migration["tags"] == ["database"]
    assert migration["source"]["query"] == "Add a non-null column to the users table"
    assert migration["source"]["extra"]["metadata"] == {"extraction_model": "some-llm"}

    # Flat items: success flag, judge label, outcome, an unknown label (kept), a list on one line, unicode.
    assert memories["Reproduce a crash before changing code"]["outcome"] == "success"
    verdict = memories["Read the judge's verdict on the smallest failing case"]
    assert verdict["outcome"] == "failure" and verdict["source"]["extra"] == {"judge_conf": 0.8}
    backup = memories["Sauvegarder avant une migration de schéma — 数据库"]
    assert backup["outcome"] == "unknown" and backup["source"] == {"task": "42", "extra": {"label": "partial"}}
    assert memories["Pin the interpreter version in CI"]["outcome"] == "failure"
    issue = memories["Handle empty input before indexing into it"]
    assert (issue["outcome"], issue["source"]["task"]) == ("failure", "swe_22")


def test_reasoningbank_import_export_import_gives_the_same_memories(repo: Path, tmp_path: Path) -> None:
    imported(repo, DATA)
    first = exported(repo)
    dump = write(tmp_path / "pool.jsonl", "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in first))
    other = fresh_repo(tmp_path / "other")
    assert imported(other, dump)["imported"] == len(first) == 13
    assert exported(other) == first


def test_export_then_import_keeps_ids_dates_status_and_supersession(repo: Path, tmp_path: Path) -> None:
    imported(repo, DATA / "entry_items.jsonl")
    original = imported(repo, DATA / "issue18.jsonl")["memories"][0]["id"]
    forced = run_cli(repo, "import", str(DATA / "issue18.jsonl"), "--force", "--json")
    copy = json.loads(forced.out)["memories"][0]["id"]
    assert run_cli(repo, "retire", copy, "--superseded-by", original).code == 0
    everything = exported(repo, "--all")
    assert [m["status"] for m in everything].count("superseded") == 1 and len(everything) == 4
    dump = write(tmp_path / "all.jsonl", "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in everything))
    other = fresh_repo(tmp_path / "other")
    result = run_cli(other, "import", str(dump))
    # The superseded copy is a near-duplicate of its successor: a restored memory that recall skips is kept.
    assert result.code == 0 and result.out.splitlines() == ["imported 4, skipped 0"], result.output
    assert exported(other, "--all") == everything
    again = imported(other, dump)  # nothing imported: exit 1
    assert again["imported"] == 0
    assert all(
        s["reason"].startswith(f"id {m['id']} is already in the pool")
        for s, m in zip(again["skips"], everything, strict=True)
    )


def test_an_id_twice_in_one_import_is_imported_once(repo: Path, tmp_path: Path) -> None:
    imported(repo, DATA / "issue18.jsonl")
    line = json.dumps(exported(repo)[0], ensure_ascii=False) + "\n"
    other = fresh_repo(tmp_path / "other")
    report = imported(other, write(tmp_path / "twice.jsonl", line + line))
    assert report["imported"] == 1
    assert report["skips"][0]["reason"].endswith("is already in the pool (imported from twice.jsonl:1)")


def test_a_failed_attempt_keeps_its_warning_in_the_prompt(repo: Path) -> None:
    imported(repo, DATA / "issue18.jsonl")
    result = run_cli(repo, "recall", "--prompt", "--min-confidence", "0", "parser IndexError on an empty file")
    assert result.code == 0, result.output
    assert "Handle empty input before indexing into it" in result.out
    assert "Learned from a failed attempt." in result.out


def test_the_past_task_text_is_recalled(repo: Path, tmp_path: Path) -> None:
    """ReasoningBank matches a new task against past tasks: words only the past task used find its memory."""
    record = {
        "task_id": "t1",
        "query": "Render the quarterly invoice PDF for Zephyrine Holdings",
        "status": "success",
        "memory_items": [
            {
                "title": "Embed fonts before exporting a document",
                "description": "When an exported file shows boxes or the wrong typeface on another machine.",
                "content": "Embed every font the layout uses.",
            },
            {
                "title": "Pin the timezone in scheduled jobs",
                "description": "When a cron job runs an hour early or late after a daylight-saving change.",
                "content": "Set TZ explicitly in the job's environment.",
            },
        ],
    }
    imported(repo, write(tmp_path / "bank.jsonl", json.dumps(record) + "\n"))
    unrelated = {
        "title": "Quote shell variables",
        "description": "When a shell script breaks on spaces in names.",
        "content": "Put double quotes around every variable expansion.",
    }
    imported(repo, write(tmp_path / "other.jsonl", json.dumps(unrelated) + "\n"))
    hits = json.loads(
        run_cli(repo, "recall", "zephyrine quarterly invoice", "--json", "-k", "3", "--mode", "bm25").out
    )["results"]
    assert {h["title"] for h in hits[:2]} == {
        "Embed fonts before exporting a document",
        "Pin the timezone in scheduled jobs",
    }


def test_items_of_one_long_task_are_not_near_duplicates(repo: Path, tmp_path: Path) -> None:
    """The task text is indexed cut to the memory's own length: three lessons from one long issue stay apart."""
    issue = (
        "Title: QuerySet.bulk_update() crashes with TypeError when a field is a JSONField holding None. "
        "Steps to reproduce: create a model with a JSONField(null=True), save three rows, then call "
        "Model.objects.bulk_update(rows, ['payload']) after setting payload to None on one of them. "
        "Traceback (most recent call last): File 'django/db/models/query.py', line 568, in bulk_update; "
        "File 'django/db/models/expressions.py', line 1021, in resolve_expression; TypeError: "
        "'NoneType' object is not iterable. Expected: the rows are updated and payload is stored as SQL NULL. "
    ) * 3
    items = [
        {
            "title": "Pin the interpreter version in CI",
            "description": "When CI fails after a runner image update: a new Python, Node or JDK version.",
            "content": "Name the exact version in the CI configuration instead of taking the image default.",
        },
        {
            "title": "Reproduce a crash before changing code",
            "description": "When an issue reports a traceback or crash on some input.",
            "content": "Write the smallest script that triggers the error and run it before and after the fix.",
        },
        {
            "title": "Quote shell variables",
            "description": "When a shell script breaks on spaces in names.",
            "content": "Put double quotes around every variable expansion.",
        },
    ]
    record = {"task_id": "django-1", "query": issue, "status": "failure", "memory_items": items}
    assert imported(repo, write(tmp_path / "bank.jsonl", json.dumps(record) + "\n"))["imported"] == 3
    assert json.loads(run_cli(repo, "dedup", "--json").out) == []


def test_a_secret_in_one_record_of_a_json_document_skips_only_that_record(repo: Path, tmp_path: Path) -> None:
    document = json.loads((DATA / "mcp_memories.json").read_text("utf-8"))
    leaky = dict(
        document["memories"][0],
        title="Rotate a leaked deploy key",
        memory_id="mem_9",
        content="The key AKIAIOSFODNN7EXAMPLQ was pasted in the log; rotate it first.",
    )
    document["memories"].append(leaky)
    bank = write(tmp_path / "memories.json", json.dumps(document, indent=2))
    report = imported(repo, bank)
    assert report["imported"] == 1 and [s["source"] for s in report["skips"]] == ["memories.json#2"]
    assert "AWS" in report["skips"][0]["reason"] or "secret" in report["skips"][0]["reason"].lower()


def test_a_deeply_nested_line_is_one_skip_naming_the_file_and_line(repo: Path, tmp_path: Path) -> None:
    good = {
        "title": "Quote shell variables",
        "description": "When a shell script breaks on spaces in names.",
        "content": "Put double quotes around every variable expansion.",
    }
    bank = write(tmp_path / "bank.jsonl", json.dumps(good) + "\n" + "[" * 200_000 + "\n")
    result = run_cli(repo, "import", str(bank))
    assert result.code == 1, result.output
    assert result.out.splitlines() == [
        "skipped bank.jsonl:2: not importable: JSON nested too deeply; a memory record is a flat object",
        "imported 1, skipped 1",
    ]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        (True, "success"),
        (False, "failure"),
        ("success", "success"),
        ("fail", "failure"),
        ("Failure", "failure"),
        (" Success ", "success"),
        ("passed", "success"),
        ("incorrect", "failure"),
        ("partial", None),
        (1, None),
        (None, None),
    ],
)
def test_outcome_words(value: object, outcome: str | None) -> None:
    assert outcome_of(value) == outcome


def test_markdown_items_join_strings_split_at_blank_lines() -> None:
    items = markdown_items(
        [
            "# Memory Item 1\n## Title A lesson\n## Description When it applies.",
            "## Content First sentence.\n\nSecond paragraph.",
            "# Memory Item 2\n## Title\nAnother\n## Content\nDo it.",
        ]
    )
    assert items == [
        {"title": "A lesson", "description": "When it applies.", "content": "First sentence.\n\nSecond paragraph."},
        {"title": "Another", "content": "Do it."},
    ]
    assert markdown_items(["Plain advice without headings. More."]) == [
        {"title": "Plain advice without headings.", "content": "Plain advice without headings. More."}
    ]
