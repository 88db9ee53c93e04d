"""The front-matter layer: golden cases from python-frontmatter's suite, and byte-stable edits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlgit import frontmatter
from tests.conftest import SHARED_DATA, VALID

CASES = SHARED_DATA / "frontmatter-cases"


def _golden_cases() -> list[Path]:
    if not CASES.is_dir():
        return []
    return sorted(p for p in CASES.rglob("*") if p.is_file() and p.suffix in (".md", ".txt"))


@pytest.mark.skipif(not CASES.is_dir(), reason=f"third-party data not found at {CASES}")
@pytest.mark.parametrize("case", _golden_cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_cases(case: Path) -> None:
    expected = json.loads(case.with_name(case.stem + ".result.json").read_text(encoding="utf-8"))
    doc = frontmatter.parse(case.read_text(encoding="utf-8"))
    content = expected.pop("content")
    assert doc.content == content
    assert json.loads(json.dumps(doc.meta, default=str)) == expected


def test_the_golden_cases_are_all_found() -> None:
    if not CASES.is_dir():
        pytest.skip(f"third-party data not found at {CASES}")
    assert len(_golden_cases()) == 11  # 7 YAML, 2 empty, 1 JSON, 1 TOML


def test_set_field_changes_only_its_line() -> None:
    text = VALID.replace("tags: [testing, verification]", "tags: [testing, verification]  # keep me\nextra_key: 7")
    new = frontmatter.set_fields(text, {"status": "retired"})
    old_lines, new_lines = text.split("\n"), new.split("\n")
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert changed == [("status: active", "status: retired")]


def test_set_field_replaces_block_values_and_appends_new_keys() -> None:
    text = "---\nid: X\ntitle: t\ntags:\n  - a\n  - b\n# a comment\nformat: insight\n---\nbody\n"
    new = frontmatter.set_fields(text, {"tags": ["c"], "superseded_by": "Y"})
    assert new == "---\nid: X\ntitle: t\ntags: [c]\n# a comment\nformat: insight\nsuperseded_by: Y\n---\nbody\n"


def test_set_field_keeps_crlf_and_bom() -> None:
    text = "\ufeff---\r\nid: X\r\nstatus: active\r\n---\r\nbody\r\n"
    new = frontmatter.set_fields(text, {"status": "retired"})
    assert new == "\ufeff---\r\nid: X\r\nstatus: retired\r\n---\r\nbody\r\n"


def test_set_field_refuses_flow_style_front_matter() -> None:
    with pytest.raises(frontmatter.FrontMatterError, match="cannot edit 'status' in place"):
        frontmatter.set_fields("---\n{id: X, status: active}\n---\nbody\n", {"status": "retired"})


def test_render_round_trips_awkward_values() -> None:
    meta = {
        "id": "X",
        "title": "a: b # not a comment",
        "domains": ["a,b", "yes", "[x]"],
        "source": {"commit": "0123456", "paths": ["a b/c.py"]},
        "created": datetime(2026, 11, 25, 14, 3, 11, tzinfo=UTC),
        "yes": "1.10",
        "multi": "line one\nline two\n",
    }
    doc = frontmatter.parse(frontmatter.render(meta, "body"))
    assert doc.meta == meta
    assert doc.content == "body"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("---\ntitle: x\n", 1, "never closed"),
        ("---\ntitle: [unclosed\n---\n", 2, "not valid YAML"),
        ("---\n- a\n- b\n---\n", 2, "is a list, not a mapping"),
        ("---\njust text\n---\n", 2, "is a string, not a mapping"),
        ("---\na: &x [*x]\n---\n", 2, "YAML anchor '&x'"),
        ("---\nid: X\nb: [1, *x]\n---\n", 3, "YAML alias '\\*x'"),
        ("+++\na = \n+++\n", 2, "TOML front matter is invalid"),
        ('{\n  "a": 1,\n}\n', 3, "JSON front matter is invalid"),
        # A date YAML reads as a timestamp but the calendar lacks: an error on its line, not a traceback.
        ("---\nid: X\ncreated: 2026-02-30T10:00:00Z\n---\n", 3, "impossible date .*day is out of range"),
        ("---\nid: X\ntitle: t\ncreated: 0000-01-01T00:00:00Z\n---\n", 4, "impossible date .*year 0"),
        ("---\nid: X\nwhen: 2026-13-01\n---\n", 3, "impossible date .*month must be"),
        ("---\nid: X\nsource:\n  dates: [2026-01-01, 2026-04-31]\n---\n", 4, "impossible date"),
    ],
)
def test_unreadable_front_matter_names_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(frontmatter.FrontMatterError, match=message) as info:
        frontmatter.parse(text)
    assert info.value.line == line


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(frontmatter.FrontMatterError):
        frontmatter.parse("---\na: " + "[" * 5000 + "]" * 5000 + "\n---\n")


def _front_matters() -> list[str]:
    from tests.conftest import SHARED_DATA

    root = Path(__file__).resolve().parent.parent
    texts = [p.read_text().split("\n---\n")[0][4:] + "\n" for p in (root / "memories").rglob("*.md")]
    suite = SHARED_DATA / "yaml-test-suite" / "cases"
    texts += [p.read_text(errors="replace") for p in sorted(suite.rglob("in.yaml"))] if suite.is_dir() else []
    rules = SHARED_DATA / "cursor-rules"
    for path in sorted(rules.rglob("*.mdc")) if rules.is_dir() else []:
        text = path.read_text(errors="replace")
        if text.startswith("---\n") and "\n---" in text[4:]:
            texts.append(text[4:].split("\n---")[0] + "\n")
    texts += [
        'title: it\'s fine, really\nn: 0123\nd: 2026-11-25\nb: yes\nf: 1e3\nv: =\nl: [a, \'b c\', "d"]\nq: "a: b"\n',
        "title: ends with a colon:\nx: a #comment\ny: - item\nz: !tag value\nw: 'it''s'\n",
    ]
    return texts


def test_the_fast_reader_agrees_with_yaml_wherever_it_answers() -> None:
    import yaml

    answered = 0
    for text in _front_matters():
        fast = frontmatter._fast_mapping(text)
        if fast is None:
            continue
        answered += 1
        assert fast == (yaml.safe_load(text) or {}), text
    assert answered >= 59


@settings(max_examples=400, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3), st.none(), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_the_fast_reader_agrees_with_yaml_on_what_mtlgit_writes(values: list[object]) -> None:
    import yaml

    meta = {f"k{i}": value for i, value in enumerate(values)}
    text = frontmatter.render(meta, "body").split("\n---\n")[0][4:] + "\n"
    fast = frontmatter._fast_mapping(text)
    if fast is not None:
        assert fast == yaml.safe_load(text)
