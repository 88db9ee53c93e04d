"""The core commands, run as real subprocesses in real git repositories."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtlgit.store import Pool
from tests.conftest import VALID, git, run_cli, write


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the hash of its bytes: to prove nothing was changed."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink() and ".git" not in p.parts
    }


def add(cli, title: str = "Reproduce the bug with a failing test first", **extra: str):  # type: ignore[no-untyped-def]
    """Add a memory whose every field derives from its title, so two titles never make near-duplicates."""
    args = [
        "add",
        "--title",
        title,
        "--description",
        f"When {title.lower()} matters.",
        "--content",
        f"{title}: this is the whole lesson, in words of its own.",
        "--json",
    ]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    result = cli(*args)
    assert result.code == 0, result.output
    return json.loads(result.out)


def test_init_creates_config_and_folder_and_refuses_to_clobber(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path / "README.md", "existing project\n")
    first = run_cli(tmp_path, "init")
    assert first.code == 0, first.output
    assert (tmp_path / ".mtlgit.yaml").read_text().count("memories: memories") == 1
    assert (tmp_path / "memories").is_dir()
    (tmp_path / ".mtlgit.yaml").write_text("memories: notes\n")
    second = run_cli(tmp_path, "init")
    assert second.code == 0 and ".mtlgit.yaml kept as it is, notes/" in second.out, second.output
    assert (tmp_path / ".mtlgit.yaml").read_text() == "memories: notes\n" and (tmp_path / "notes").is_dir()
    other = run_cli(tmp_path, "init", "--memories", "lessons")
    assert other.code == 1 and "names the folder notes/, not lessons/" in other.err
    assert (tmp_path / ".mtlgit.yaml").read_text() == "memories: notes\n"


def test_init_in_a_clone_of_a_project_that_uses_mtlgit_installs_the_hooks(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q")
    assert run_cli(upstream, "init", "--no-hooks").code == 0
    write(upstream / "memories" / "insight" / "a.md", VALID)
    git(upstream, "add", "-A")
    git(upstream, "commit", "-qm", "mtlgit")
    git(tmp_path, "clone", "-q", str(upstream), "clone")
    clone = tmp_path / "clone"
    result = run_cli(clone, "init", "--hooks", "--starter")
    assert result.code == 0, result.output
    assert "kept as it is" in result.out and "hook pre-commit: installed" in result.out
    assert git(clone, "status", "--porcelain", ".mtlgit.yaml") == ""


def test_init_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "init")
    assert result.code == 1
    assert "not inside a git repository" in result.err and "git init" in result.err
    assert "Traceback" not in result.output


def test_add_writes_a_valid_file_named_by_format_slug_and_id(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli, domain="python,swe-bench", tag="testing", source_commit="0123456", source_path="a b.py")
    path = repo / memory["path"]
    assert path.parent == repo / "memories" / "insight"
    assert path.name == f"reproduce-the-bug-with-a-failing-test-first-{memory['id'][-8:].lower()}.md"
    text = path.read_text()
    assert text.startswith(f"---\nid: {memory['id']}\ntitle: Reproduce the bug")
    assert "domains: [python, swe-bench]" in text and "commit: '0123456'" in text
    assert memory["source"] == {"commit": "0123456", "paths": ["a b.py"]}
    assert cli("lint").code == 0
    shown = cli("show", memory["id"][:10])
    assert shown.code == 0 and shown.out.endswith(text)


def test_add_reads_content_from_stdin(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "add",
        "-t",
        "Bisect a flaky test",
        "-d",
        "When a test fails only sometimes.",
        "-c",
        "-",
        "--json",
        input="Run it 50 times in a loop and record the seed of each failure.\n",
    )
    assert result.code == 0, result.output
    assert json.loads(result.out)["content"] == "Run it 50 times in a loop and record the seed of each failure."


def test_add_without_content_off_a_terminal_says_what_is_missing(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("add", "--title", "x")
    assert result.code == 1
    assert "missing --content" in result.err
    assert list((repo / "memories").rglob("*.md")) == []


def _editor(tmp_path: Path, script: str) -> dict[str, str]:
    """An $EDITOR that is a real program: it runs ``script`` with the file's path as sys.argv[1]."""
    path = write(tmp_path / "editor.py", "import sys\nfrom pathlib import Path\np = Path(sys.argv[1])\n" + script)
    return {"EDITOR": f"{sys.executable} {path}", "VISUAL": ""}


def test_add_with_editor_uses_the_template(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _editor(
        tmp_path,
        (
            "t = p.read_text()\n"
            "t = t.replace('title: \\n', 'title: Pin the interpreter\\n')\n"
            "t = t.replace('description: \\n', 'description: When a venv exists, use its python.\\n')\n"
            "p.write_text(t.replace('<!--', 'Call .venv/bin/python, never a bare python.\\n<!--'))\n"
        ),
    )
    result = cli("add", "--edit", "--domain", "python", "--json", env=env)
    assert result.code == 0, result.output
    memory = json.loads(result.out)
    assert memory["title"] == "Pin the interpreter"
    assert memory["content"] == "Call .venv/bin/python, never a bare python."
    assert memory["domains"] == ["python"]
    assert list((repo / ".git" / "mtlgit" / "drafts").iterdir()) == []


def test_edit_validates_and_rewrites_only_what_changed(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli)
    path = repo / memory["path"]
    before = path.read_text()
    env = _editor(tmp_path, "p.write_text(p.read_text().replace('title: Reproduce', 'title: Always reproduce'))\n")
    result = cli("edit", memory["id"], env=env)
    assert result.code == 0, result.output
    after = path.read_text()
    assert after == before.replace("title: Reproduce", "title: Always reproduce")


def test_a_broken_edit_changes_nothing_and_keeps_the_draft(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli)
    path = repo / memory["path"]
    before = path.read_text()
    env = _editor(tmp_path, "p.write_text(p.read_text().replace('format: insight', 'format: poem'))\n")
    result = cli("edit", memory["id"], env=env)
    assert result.code == 1
    assert "'format' is 'poem'" in result.err and "your edit is kept in" in result.err
    assert path.read_text() == before
    draft = Path(result.err.split("your edit is kept in ")[1].split(": `mtlgit edit")[0])
    assert "format: poem" in draft.read_text()


def test_retire_changes_one_line_and_hides_the_memory(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    old, new = add(cli), add(cli, title="Reproduce first, then fix")
    path = repo / old["path"]
    before = path.read_text()
    result = cli("retire", old["id"][:12], "--superseded-by", new["id"])
    assert result.code == 0, result.output
    changed = [(a, b) for a, b in zip(before.splitlines(), path.read_text().splitlines(), strict=True) if a != b]
    assert changed == [("status: active", "status: superseded"), ("superseded_by: null", f"superseded_by: {new['id']}")]
    listed = json.loads(cli("list", "--json").out)
    assert [m["id"] for m in listed] == [new["id"]]
    assert {m["id"] for m in json.loads(cli("list", "--all", "--json").out)} == {old["id"], new["id"]}


def test_list_filters(cli) -> None:  # type: ignore[no-untyped-def]
    py = add(cli, title="Pin the interpreter of the virtual environment", domain="python", tag="testing")
    add(cli, title="Vendor modules before an offline build", domain="go", tag="build")
    assert [m["id"] for m in json.loads(cli("list", "--domain", "PYTHON", "--json").out)] == [py["id"]]
    assert [m["id"] for m in json.loads(cli("list", "--exclude-domain", "go", "--json").out)] == [py["id"]]
    assert [m["id"] for m in json.loads(cli("list", "--tag", "testing", "--json").out)] == [py["id"]]
    assert json.loads(cli("list", "--format", "workflow", "--json").out) == []
    text = cli("list").out
    assert "Pin the interpreter" in text and "Vendor modules" in text


def test_show_unknown_and_ambiguous_ids(cli) -> None:  # type: ignore[no-untyped-def]
    add(cli, title="Measure before optimising the hot loop")
    add(cli, title="Quote every shell variable expansion")
    unknown = cli("show", "ZZZZ")
    assert unknown.code == 1 and "no memory has the id or id prefix 'ZZZZ'" in unknown.err
    ambiguous = cli("show", "0")
    assert ambiguous.code == 1 and "matches 2 memories" in ambiguous.err


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("list", "--format", "poem").code == 2
    assert cli("frobnicate").code == 2


def test_every_command_has_help_with_an_example(cli) -> None:  # type: ignore[no-untyped-def]
    from mtlgit.cli.main import COMMANDS

    for name in COMMANDS:
        result = cli(name, "--help")
        assert result.code == 0, name
        assert "Example:" in result.out, name


BAD_FILES: dict[str, bytes] = {
    "no-front-matter.md": b"Just some notes.\n",
    "not-a-mapping.md": b"---\n- a\n- b\n---\nbody\n",
    "bad-yaml.md": b"---\ntitle: [oops\n---\nbody\n",
    "wrong-type.md": VALID.replace("title: Validate", "title: 12 #").replace("4K9B", "4K9C").encode(),
    "unknown-format.md": VALID.replace("format: insight", "format: poem").replace("4K9B", "4K9D").encode(),
    "duplicate.md": VALID.encode(),
    "latin1.md": VALID.replace("4K9B", "4K9E").encode().replace(b"behaviour", b"behavio\xfcr"),
    "empty.md": b"",
    "huge.md": b"---\nid: 01JDQ2V6R3J8Z6TT4M0S3W4K9F\n---\n" + b"x" * (10 * 1024 * 1024),
    "image.md": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    "conflict.md": VALID.replace("4K9B", "4K9G")
    .replace("status: active", "<<<<<<< ours\nstatus: active\n=======\nstatus: x\n>>>>>>> theirs")
    .encode(),
}


def test_bad_files_are_reported_and_the_rest_of_the_pool_loads(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = add(cli)
    write(repo / "memories" / "a-original.md", VALID)
    for name, data in BAD_FILES.items():
        write(repo / "memories" / "bad" / name, data)
    outside = write(tmp_path / "outside.md", VALID.replace("4K9B", "4K9H"))
    os.symlink(outside, repo / "memories" / "bad" / "link-outside.md")
    before = snapshot(repo)

    result = cli("lint", "--json")
    assert result.code == 1
    report = json.loads(result.out)
    by_file = {p["path"].rsplit("/", 1)[-1]: p for p in report["problems"] if p["severity"] == "error"}
    expected = {
        "no-front-matter.md": "no front matter",
        "not-a-mapping.md": "not a mapping",
        "bad-yaml.md": "not valid YAML",
        "wrong-type.md": "'title' must be text",
        "unknown-format.md": "'format' is 'poem'",
        "duplicate.md": "also the id of memories/a-original.md",
        "latin1.md": "not UTF-8",
        "empty.md": "empty file",
        "huge.md": "10.0 MiB",
        "image.md": "binary file",
        "conflict.md": "merge conflict",
        "link-outside.md": "symlink points outside the repository",
    }
    for name, words in expected.items():
        assert words in by_file[name]["message"], (name, by_file.get(name))
    assert by_file["bad-yaml.md"]["line"] == 2
    assert by_file["conflict.md"]["line"] == 17

    text = cli("lint")
    assert "memories/bad/unknown-format.md:5: error: 'format' is 'poem'" in text.out
    assert "Traceback" not in text.output

    listed = {m["id"] for m in json.loads(cli("list", "--json").out)}
    assert listed == {good["id"], "01JDQ2V6R3J8Z6TT4M0S3W4K9B"}
    assert "12 file(s) could not be read" in cli("list").err
    recalled = json.loads(cli("recall", "validate input", "-k", "10", "--json").out)["results"]
    assert {r["id"] for r in recalled} == listed  # not the copy behind the symlink that leaves the repository
    assert json.loads(cli("stats", "--json").out)["unreadable_files"] == 12
    # list, show, stats and export read through the index: the same memories and errors as parsing every file.
    pool = Pool.open(repo)
    parsed, indexed = pool.load(), pool.load_indexed()
    assert [m.to_json() for m in indexed.memories] == [m.to_json() for m in parsed.memories]
    assert [m.blob for m in indexed.memories] == [m.blob for m in parsed.memories]
    errors = sorted((p.path, p.line, p.code, p.message) for p in parsed.problems if p.is_error)
    assert sorted((p.path, p.line, p.code, p.message) for p in indexed.problems) == errors
    assert snapshot(repo) == before


def test_a_hostile_title_cannot_escape_the_memories_folder(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli, title="../../../../x")
    assert memory["path"].startswith("memories/insight/x-")
    assert not (repo.parent / "x.md").exists()


def test_lint_fix_ids_gives_a_copy_a_new_id(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    write(repo / "memories" / "a.md", VALID)
    write(repo / "memories" / "b.md", VALID)
    assert cli("lint").code == 1
    fixed = cli("lint", "--fix-ids")
    assert fixed.code == 0, fixed.output
    assert "memories/b.md: new id" in fixed.out
    assert (repo / "memories" / "a.md").read_text() == VALID
    assert len(json.loads(cli("list", "--json").out)) == 2


def test_lint_strict_fails_on_warnings(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    write(repo / "memories" / "a.md", VALID.replace("id: 01JDQ2V6R3J8Z6TT4M0S3W4K9B", "id: hand-written"))
    assert cli("lint").code == 0
    strict = cli("lint", "--strict")
    assert strict.code == 1 and "is not a ULID" in strict.out


def test_concurrent_adds_never_share_a_file(repo: Path) -> None:
    script = (
        "import sys\nfrom mtlgit import Pool\npool = Pool.open(sys.argv[1])\n"
        "for i in range(15):\n"
        "    pool.add(title='same title', description='d', content=f'c {i}')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(repo)]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    files = list((repo / "memories" / "insight").glob("*.md"))
    assert len(files) == 60
    assert len(json.loads(run_cli(repo, "list", "--json").out)) == 60
    assert not [p for p in (repo / "memories").rglob(".*")]


def test_config_errors_name_the_line(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    write(repo / ".mtlgit.yaml", "model: default\nmemories: ../elsewhere\n")
    result = cli("list")
    assert result.code == 1
    assert ".mtlgit.yaml:2: 'memories: ../elsewhere' points outside the repository" in result.err
    write(repo / ".mtlgit.yaml", "recall:\n  k: [1\n")
    result = cli("list")
    assert result.code == 1 and ".mtlgit.yaml:" in result.err and "Traceback" not in result.output


@pytest.mark.parametrize("where", ["root", "subfolder"])
def test_commands_work_from_a_subfolder(repo: Path, where: str) -> None:
    cwd = repo if where == "root" else repo / "memories"
    result = run_cli(cwd, "add", "-t", "t", "-d", "d", "-c", "c")
    assert result.code == 0, result.output
    path = result.out.split()[-1]
    assert path.startswith("insight/t-" if where == "subfolder" else "memories/insight/t-") and (cwd / path).is_file()


# --- batches and their exit codes (README, "Exit codes") -------------------------------------------------------


def item(title: str) -> dict[str, str]:
    return {"title": title, "description": f"When {title.lower()} matters.", "content": f"{title}: in its own words."}


def test_add_items_exits_0_only_when_every_item_was_added(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    empty = cli("add", "--items", "-", input="  \n")
    assert empty.code == 1 and "standard input is empty: nothing to add" in empty.err
    none = cli("add", "--items", "-", input="[]")
    assert none.code == 0 and "nothing to add" in none.out
    good = [item("Pin the interpreter of the virtual environment"), item("Vendor modules before an offline build")]
    added = cli("add", "--items", "-", input=json.dumps(good))
    assert added.code == 0, added.output
    assert added.out.count("added 01") == 2 and "added 2, rejected 0" in added.out
    mixed = [item("Quote every shell variable expansion"), {"title": 12}]
    partial = cli("add", "--items", "-", "--json", input=json.dumps(mixed))
    assert partial.code == 1
    report = json.loads(partial.out)
    assert (report["added"], report["rejected"]) == (1, 1)
    assert report["items"][1]["reasons"] == ["'title' must be a string", "'title' is missing"]
    rejected = cli("add", "--items", "-", input=json.dumps([item("Quote every shell variable expansion")]))
    assert rejected.code == 1 and "rejected item 1" in rejected.err and "added 0, rejected 1" in rejected.out
    assert len(list((repo / "memories").rglob("*.md"))) == 3


def test_add_json_file_still_reads_items_with_a_deprecation_note(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    answer = write(repo.parent / "answer.json", json.dumps([item("Measure before optimising the hot loop")]))
    result = cli("add", "--json", str(answer))
    assert result.code == 0, result.output
    assert json.loads(result.out)["added"] == 1
    assert f"`add --json {answer}` is deprecated: use `add --items {answer} --json`" in result.err
    both = cli("add", "--json", str(answer), "--items", str(answer))
    assert both.code == 2 and "give the items once" in both.err


def test_import_exits_1_when_an_item_was_skipped_or_nothing_was_there(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    items = [item("Pin the interpreter of the virtual environment"), item("Vendor modules before an offline build")]
    source = write(repo.parent / "items.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    first = cli("import", str(source))
    assert first.code == 0 and "imported 2, skipped 0" in first.out, first.output
    again = cli("import", str(source))
    assert again.code == 1 and "imported 0, skipped 2" in again.out
    empty = cli("import", str(write(repo.parent / "empty.jsonl", "")))
    assert empty.code == 1 and "nothing to import in" in empty.err


def test_fields_from_mapping_gives_items_and_files_one_set_of_messages(repo: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from mtlgit.intake import fields_from_mapping

    bad = {"title": "Pin the interpreter", "tags": [3], "id": "01JDQ2V6R3J8Z6TT4M0S3W4K9B", "content": "x"}
    _fields, problems = fields_from_mapping(bad)
    assert problems == ["'tags' must be a list of strings", "id cannot be set: mtlgit assigns them; remove them"]
    memo = write(repo.parent / "memo.md", "---\ntitle: Pin the interpreter\ntags: [3]\nid: 01JDQ2V6\n---\nUse it.\n")
    result = cli("add", "--file", str(memo))
    assert result.code == 1
    assert f"{memo}:3: 'tags' must be a list of strings" in result.err
    assert f"{memo}:4: id cannot be set: mtlgit assigns them; remove them" in result.err
    fields, problems = fields_from_mapping({"title": " T ", "tags": "a, b", "content": ["one", "two"]}, {"tags": ["x"]})
    assert problems == []
    assert (fields["title"], fields["tags"], fields["content"]) == ("T", ["a", "b"], "1. one\n2. two")


# --- a missing memories folder ----------------------------------------------------------------------------------


def test_recall_and_list_say_the_memories_folder_is_missing(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    for args in (("recall", "a flaky test"), ("list",)):
        result = run_cli(fresh, *args)
        assert result.code == 0 and "mtlgit is not set up in" in result.err and "run `mtlgit init`" in result.err
    add(cli)
    for folder in (repo / "memories").rglob("*"):
        if folder.is_file():
            folder.unlink()
    for folder in sorted((repo / "memories").rglob("*"), reverse=True):
        folder.rmdir()
    (repo / "memories").rmdir()
    for args in (("recall", "a flaky test"), ("list",)):
        result = cli(*args)
        assert result.code == 0 and "the memories folder memories/ of .mtlgit.yaml does not exist" in result.err


# --- edit: drafts and the editor ---------------------------------------------------------------------------------


def test_edit_reopens_a_kept_draft_and_never_deletes_it_unapplied(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli)
    path = repo / memory["path"]
    before = path.read_text()
    broken = cli(
        "edit", memory["id"], env=_editor(tmp_path, "p.write_text(p.read_text().replace('insight', 'poem'))\n")
    )
    assert broken.code == 1
    draft = repo / ".git" / "mtlgit" / "drafts" / f"EDIT_{memory['id']}.md"
    seen = tmp_path / "seen.md"
    # An editor closed without a change: it copies what it was shown, and saves nothing.
    unchanged = cli("edit", memory["id"], env=_editor(tmp_path, f"Path({str(seen)!r}).write_text(p.read_text())\n"))
    assert "format: poem" in seen.read_text(), "the kept draft was not opened"
    assert unchanged.code == 1 and "Opening the draft kept from an earlier edit" in unchanged.err
    assert "format: poem" in draft.read_text() and path.read_text() == before
    fixed = cli("edit", memory["id"], env=_editor(tmp_path, "p.write_text(p.read_text().replace('poem', 'insight'))\n"))
    assert fixed.code == 0 and path.read_text() == before and not draft.exists()
    assert list(draft.parent.iterdir()) == []


def test_a_kept_draft_never_undoes_a_later_change_to_the_memory(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli)
    path = repo / memory["path"]
    to_poem = "p.write_text(p.read_text().replace('format: insight', 'format: poem'))\n"
    assert cli("edit", memory["id"], env=_editor(tmp_path, to_poem)).code == 1
    path.write_text(path.read_text().replace("this is the whole lesson", "this is the lesson"))  # a teammate's change
    changed = path.read_text()
    back = "p.write_text(p.read_text().replace('format: poem', 'format: insight'))\n"
    result = cli("edit", memory["id"], env=_editor(tmp_path, back))
    assert result.code == 1 and f"{memory['path']} changed since your draft" in result.err
    assert path.read_text() == changed


def test_a_failing_editor_is_named_with_its_exit_status(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    memory = add(cli)
    env = _editor(tmp_path, "raise SystemExit(3)\n")
    result = cli("edit", memory["id"], env=env)
    assert result.code == 1
    assert f"the editor `{env['EDITOR']}` ($EDITOR) exited with status 3" in result.err
    assert "set $EDITOR" not in result.err and "your draft is kept at" in result.err
    missing = cli("edit", memory["id"], env={"EDITOR": "no-such-editor-here", "VISUAL": ""})
    assert missing.code == 1 and "cannot start the editor `no-such-editor-here` ($EDITOR)" in missing.err
    added = cli("add", "--edit", "--title", "x", env=env)
    assert added.code == 1 and "exited with status 3" in added.err


# --- help and wording -----------------------------------------------------------------------------------------------


def test_help_shows_recall_ids_and_every_option_of_prompt_extract(cli) -> None:  # type: ignore[no-untyped-def]
    assert "mtlgit recall " in cli("--help").out
    assert "../" not in cli("eval", "--help").out
    for command in ("show", "edit", "log", "retire"):
        assert f"Usage: mtlgit {command} [OPTIONS] ID\n" in cli(command, "--help").out, command
    extract = cli("prompt", "extract", "--help").out
    for option in ("--format", "--max-items"):
        line = " ".join(extract.split(option, 1)[1].split("\n  --", 1)[0].split())
        assert len(line) > 60, f"{option} has no help: {line}"


def test_export_takes_the_filters_of_list(cli) -> None:  # type: ignore[no-untyped-def]
    py = add(cli, title="Pin the interpreter of the virtual environment", domain="python", tag="testing")
    add(cli, title="Vendor modules before an offline build", domain="go", tag="build")
    for args in (("--domain", "python"), ("--exclude-domain", "go"), ("--tag", "testing")):
        exported = cli("export", *args)
        assert exported.code == 0, exported.output
        assert [json.loads(line)["id"] for line in exported.out.splitlines()] == [py["id"]], args


def test_a_secret_is_named_with_the_right_article(cli) -> None:  # type: ignore[no-untyped-def]
    key = "AKIA" + "IOSFODNN7EXAMPLF"
    result = cli("add", "-t", "Use the deploy key", "-d", "When deploying.", "-c", f"The key is {key} here.")
    assert result.code == 1 and "contains an AWS Access Key on line" in result.err


def test_identical_memories_are_called_identical(cli) -> None:  # type: ignore[no-untyped-def]
    first = add(cli)
    again = cli("add", "--items", "-", input=json.dumps([item("Reproduce the bug with a failing test first")]))
    assert again.code == 1
    forced = {
        "title": first["title"],
        "description": first["description"],
        "content": first["content"],
    }
    same = cli("add", "--items", "-", input=json.dumps([forced]))
    assert same.code == 1 and f"identical to {first['id']}" in same.err and "cosine" not in same.err
    assert cli("add", "--items", "-", "--force", input=json.dumps([forced])).code == 0
    pairs = cli("dedup")
    assert "identical text" in pairs.out and "cosine" not in pairs.out


def test_stats_counts_agree_and_say_what_they_include(repo: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    add(cli, domain="python")
    team = tmp_path / "team"
    write(team / "memories" / "a.md", VALID)
    git(team, "init", "-q")
    git(team, "add", "-A")
    git(team, "commit", "-qm", "memories")
    assert cli("pool", "add", "team", str(team), "--ref", "main").code == 0
    text = cli("stats").out
    assert text.splitlines()[0] == "2 memories (1 in this repository, 1 in pools)"
    counts = json.loads(cli("stats", "--json").out)
    assert counts["memories"] == 2 and counts["pool"] == {"local": 1, "team": 1}
    for key in ("format", "scope", "outcome", "status", "pool"):
        assert sum(counts[key].values()) == counts["memories"], key
    assert counts["domain"] == {"python": 2, "swe-bench": 1}


def test_a_reader_that_goes_away_is_not_a_failure(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert run_cli(tmp_path, "init", "--starter", "--no-hooks").code == 0
    for command in (["export"], ["list"]):
        # `mtlgit export | head -1`: the reader closes the pipe before mtlgit writes.
        proc = subprocess.Popen(
            [sys.executable, "-m", "mtlgit", *command], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0 and err == b"", command
