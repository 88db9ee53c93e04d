"""Format v1 validation: every bad input is one clear problem naming the line, never an exception."""

from __future__ import annotations

import pytest

from mtlgit.ids import blob_id, new_ulid, ulid_time_ms
from mtlgit.memory import parse_bytes, slugify
from mtlgit.rules import is_ulid
from tests.conftest import VALID


def test_the_design_example_is_valid() -> None:
    memory, problems = parse_bytes(VALID.encode(), "memories/a.md")
    assert problems == []
    assert memory is not None
    assert memory.id == "01JDQ2V6R3J8Z6TT4M0S3W4K9B"
    assert memory.domains == ("swe-bench", "python")
    assert memory.source["paths"] == ["django/db/models/sql/query.py"]
    assert memory.created == "2026-11-25T14:03:11Z"
    assert memory.content.startswith("Write a short battery")
    assert memory.blob == blob_id(VALID.encode())


def test_blob_id_is_gits() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def _problem(text: str | bytes) -> tuple[int, str, str]:
    data = text.encode() if isinstance(text, str) else text
    memory, problems = parse_bytes(data, "m.md")
    errors = [p for p in problems if p.is_error]
    assert memory is None and errors, problems
    return errors[0].line, errors[0].code, errors[0].message


@pytest.mark.parametrize(
    ("text", "line", "code", "words"),
    [
        ("no front matter here\n", 1, "front-matter", "no front matter"),
        ("---\ntitle: [x\n---\nbody\n", 2, "front-matter", "not valid YAML"),
        ("---\n- a\n---\nbody\n", 2, "front-matter", "not a mapping"),
        (VALID.replace("title: Validate", "title: 2024 #"), 3, "type", "put the value in quotes"),
        (VALID.replace("format: insight", "format: insigt"), 5, "value", "did you mean 'insight'"),
        (VALID.replace("domains: [swe-bench, python]", "domains: {a: 1}"), 7, "type", "list of text"),
        (VALID.replace("  commit: 4f2c1a9", "  commit: 1234567"), 14, "type", "source.commit"),
        (VALID.replace("created: 2026-11-25T14:03:11Z", "created: last tuesday"), 16, "type", "not a date"),
        (VALID.replace("id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B\n", ""), 1, "missing", "'id'"),
        (VALID.replace("id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B", "id: ../../etc"), 2, "id", "may hold only"),
        (
            VALID.replace(
                "description: Before calling a fix done, run a minimal inline test of the changed behaviour.\n", ""
            ),
            1,
            "missing",
            "'description'",
        ),
        (VALID.split("---\nWrite")[0] + "---\n\n", 20, "content", "no content"),
        ("", 0, "empty", "empty file"),
        ("  \n\n", 0, "empty", "empty file"),
        (b"\x89PNG\r\n\x1a\n\0\0\0", 0, "binary", "binary file"),
        (VALID.encode().replace(b"Write a short", b"Write a \xff short"), 20, "encoding", "not UTF-8"),
        (
            VALID.replace("status: active", "<<<<<<< HEAD\nstatus: active\n=======\nstatus: retired\n>>>>>>> b"),
            17,
            "conflict",
            "merge conflict",
        ),
        (b"x" * (1024 * 1024 + 1), 0, "too-large", "at most 1 MiB"),
    ],
)
def test_bad_memories_give_one_clear_error(text: str | bytes, line: int, code: str, words: str) -> None:
    got_line, got_code, message = _problem(text)
    assert (got_line, got_code) == (line, code), message
    assert words in message


def test_warnings_do_not_stop_loading() -> None:
    text = VALID.replace("id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B", "id: my-note").replace("tags:", "tagz: [x]\ntags:")
    memory, problems = parse_bytes(text.encode(), "m.md")
    assert memory is not None
    assert {p.code for p in problems} == {"id", "unknown-key"}
    assert all(not p.is_error for p in problems)
    assert "did you mean 'tags'" in " ".join(p.message for p in problems)


def test_formats_have_their_own_required_fields() -> None:
    workflow = VALID.replace("format: insight", "format: workflow")
    _line, code, message = _problem(workflow)
    assert code == "missing" and "'goal'" in message
    ok = workflow.replace("format: workflow", "format: workflow\ngoal: ship it").replace(
        "Write a short", "1. Write a short"
    )
    memory, problems = parse_bytes(ok.encode(), "m.md")
    assert memory is not None and memory.scope == "task-agnostic" and problems == []
    summary = VALID.replace("format: insight", "format: summary").replace("scope: task-agnostic\n", "")
    memory, problems = parse_bytes(summary.encode(), "m.md")
    assert memory is not None and memory.scope == "task-specific"
    assert [p.code for p in problems] == ["summary-sections"]


def test_ulids_are_sortable_and_decode_to_their_time() -> None:
    first, second = new_ulid(1_700_000_000_000), new_ulid(1_700_000_000_001)
    assert is_ulid(first) and is_ulid(second) and first < second
    assert ulid_time_ms(first) == 1_700_000_000_000
    assert len({new_ulid() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("../../x", "x"),
        ("Use `git bisect` — fast!", "use-git-bisect-fast"),
        ("...", "memory"),
        ("Ünïcödé — title", "unicode-title"),
        ("word " * 20, "word-word-word-word-word-word-word-word-word-word-word-word"),
        ("x" * 70, "x" * 60),
    ],
)
def test_slugs_are_safe_file_names(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_abbreviations_do_not_count_as_sentences() -> None:
    content = "Check the inputs first, e.g. the types vs. the values, i.e. 3.5 etc. before use. Then run it."
    text = VALID.split("---\nWrite")[0] + "---\n" + content + "\n"
    memory, problems = parse_bytes(text.encode(), "m.md")
    assert memory is not None and problems == []
    long = VALID.split("---\nWrite")[0] + "---\n" + "One. Two. Three. Four. Five. Six.\n"
    _memory, problems = parse_bytes(long.encode(), "m.md")
    assert [p.code for p in problems] == ["long-insight"]
