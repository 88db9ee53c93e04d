"""Hardening: concurrent writers and readers, crashes at random points, hostile and odd input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlgit import frontmatter
from mtlgit.memory import parse_bytes
from tests.conftest import VALID, git, run_cli, write

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
    "romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def items(writer: int, count: int) -> list[dict[str, object]]:
    rng = random.Random(writer)
    out = []
    for n in range(count):
        words = " ".join(rng.sample(WORDS, 6))
        out.append(
            {
                "title": f"Lesson {writer}-{n} about {words}",
                "description": f"When {words} happens.",
                "content": f"Token w{writer}n{n}x marks this memory; {words}.",
                "tags": [f"writer{writer}"],
            }
        )
    return out


@pytest.mark.slow
def test_eight_writers_readers_and_a_rebuild_lose_nothing(repo: Path, tmp_path: Path) -> None:
    """The race itself (a file added while the folders are listed) is reproduced deterministically in
    test_index_integrity.py; this runs the real processes together, readers until every writer is done."""
    env = dict(os.environ)
    stop = tmp_path / "writers-done"
    mtlgit = [sys.executable, "-m", "mtlgit"]
    writers = [
        subprocess.Popen(
            [*mtlgit, "add", "--json", "-", "--force"],
            cwd=repo,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(8)
    ]
    readers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import os, subprocess, sys\n"
                "while True:\n"
                "    done = os.path.exists(sys.argv[1])\n"
                "    p = subprocess.run([sys.executable, '-m', 'mtlgit', 'recall', 'lesson token', '--json'],"
                " capture_output=True, text=True)\n"
                "    if p.returncode != 0:\n"
                "        print(p.stderr); sys.exit(1)\n"
                "    if done:\n"
                "        break\n",
                str(stop),
            ],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    rebuild = subprocess.Popen(
        [*mtlgit, "index", "--rebuild"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    outputs = [w.communicate(json.dumps(items(i, 50)), timeout=900) for i, w in enumerate(writers)]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert json.loads(out)["added"] == 50
    assert rebuild.wait(timeout=900) == 0, rebuild.stderr.read() if rebuild.stderr else ""
    stop.touch()
    for reader in readers:
        out, err = reader.communicate(timeout=900)
        assert reader.returncode == 0, out + err
    files = list((repo / "memories").rglob("*.md"))
    assert len(files) == 400
    lint = json.loads(run_cli(repo, "lint", "--json").out)
    assert lint["errors"] == 0 and lint["files"] == 400
    assert len(json.loads(run_cli(repo, "list", "--json").out)) == 400
    for writer in range(8):
        for n in (0, 49):
            hits = json.loads(run_cli(repo, "recall", f"w{writer}n{n}x", "--mode", "bm25", "-k", "1", "--json").out)
            assert hits["results"][0]["title"].startswith(f"Lesson {writer}-{n} ")


@pytest.mark.slow
def test_parallel_commits_in_worktrees_with_hooks(repo: Path) -> None:
    assert run_cli(repo, "hooks", "install").code == 0
    write(repo / "memories" / "base.md", VALID)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    trees = []
    for n in range(4):
        tree = repo.parent / f"wt{n}"
        git(repo, "worktree", "add", "-q", str(tree), "-b", f"b{n}")
        for m in range(5):
            text = VALID.replace("4K9B", f"{n}{m:03d}").replace("Validate a fix", f"Lesson {n}.{m}, validate a fix")
            write(tree / "memories" / f"m{n}-{m}.md", text)
        trees.append(tree)
    commits = [subprocess.Popen(["sh", "-c", "git add -A && git commit -qm work"], cwd=tree) for tree in trees]
    assert [c.wait(timeout=300) for c in commits] == [0, 0, 0, 0]
    for tree in trees:
        result = run_cli(tree, "recall", "validate a fix", "-k", "10", "--json")
        assert result.code == 0, result.output
        assert len(json.loads(result.out)["results"]) == 6
        assert run_cli(tree, "lint").code == 0


@pytest.mark.slow
def test_kill_9_at_random_points_never_breaks_the_next_recall(repo: Path) -> None:
    for i in range(300):
        write(
            repo / "memories" / f"m{i:03d}.md",
            f"---\nid: M{i:03d}\ntitle: memory number {i}\nformat: insight\n"
            f"description: about topic {i}\n---\nThe content of memory {i} mentions word{i}.\n",
        )
    rng = random.Random(7)
    tried = failures = 0
    for attempt in range(20):
        if attempt % 4 == 0:  # change something so a refresh, not only a rebuild, has work to do
            path = repo / "memories" / f"m{attempt:03d}.md"
            path.write_text(path.read_text().replace("mentions", "now mentions"))
        command = ["index", "--rebuild"] if attempt % 2 else ["recall", "word1"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mtlgit", *command], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.05, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tried += 1
        result = run_cli(repo, "recall", f"word{attempt * 7}", "--mode", "bm25", "-k", "1", "--json")
        if result.code != 0 or json.loads(result.out)["results"][0]["id"] != f"M{attempt * 7:03d}":
            failures += 1
    assert (tried, failures) == (20, 0)


# --- the parser and the writer, for any input ---------------------------------------------------------------

SCALARS = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
)
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-", min_size=1, max_size=12).filter(
    lambda k: k[0].isalpha() and k not in ("id", "title")
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    meta=st.dictionaries(KEYS, st.one_of(SCALARS, st.lists(st.text(max_size=20), max_size=4)), max_size=6),
    body=st.text(max_size=300),
)
def test_render_then_parse_gives_back_every_value(meta: dict[str, object], body: str) -> None:
    text = frontmatter.render({"id": "X", "title": "t", **meta}, body)
    doc = frontmatter.parse(text)
    assert doc.meta == {"id": "X", "title": "t", **meta}
    assert doc.content == body.strip("\n").strip() or body.strip() == ""


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(SCALARS, st.lists(st.text(max_size=20), max_size=4)), key=KEYS)
def test_setting_one_field_changes_only_that_field(value: object, key: str) -> None:
    new = frontmatter.set_fields(VALID, {key: value})
    doc = frontmatter.parse(new)
    expected = {**frontmatter.parse(VALID).meta, key: value}
    assert doc.meta == expected
    assert doc.body == frontmatter.parse(VALID).body
    unchanged = [line for line in VALID.split("\n") if not line.startswith(f"{key}:")]
    assert all(line in new.split("\n") for line in unchanged)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=2000))
def test_any_bytes_load_or_are_reported(data: bytes) -> None:
    memory, problems = parse_bytes(data, "m.md")
    assert memory is not None or any(p.is_error for p in problems)


@settings(max_examples=300, deadline=None)
@given(front=st.text(max_size=400), body=st.text(max_size=200))
def test_any_front_matter_text_loads_or_is_reported(front: str, body: str) -> None:
    memory, problems = parse_bytes(f"---\n{front}\n---\n{body}".encode(), "m.md")
    assert memory is not None or any(p.is_error and p.message for p in problems)


# --- odd paths ----------------------------------------------------------------------------------------------


def test_paths_with_spaces_unicode_and_case_only_differences(repo: Path) -> None:
    write(repo / "memories" / "with space" / "ünïcode name.md", VALID)
    write(repo / "memories" / "Case.md", VALID.replace("4K9B", "4K9C").replace("Validate a fix", "Upper case"))
    write(repo / "memories" / "case.md", VALID.replace("4K9B", "4K9D").replace("Validate a fix", "Lower case"))
    listed = json.loads(run_cli(repo, "list", "--json").out)
    assert {m["path"] for m in listed} == {
        "memories/with space/ünïcode name.md",
        "memories/Case.md",
        "memories/case.md",
    }
    result = json.loads(run_cli(repo, "recall", "upper lower case", "-k", "5", "--json").out)
    assert len(result["results"]) == 3
    shown = run_cli(repo, "show", "memories/with space/ünïcode name.md")
    assert shown.code == 0 and "Validate a fix" in shown.out


def test_symlink_loops_and_a_symlinked_memories_folder(repo: Path, tmp_path: Path) -> None:
    os.symlink("..", repo / "memories" / "loop")
    write(repo / "memories" / "a.md", VALID)
    assert len(json.loads(run_cli(repo, "list", "--json").out)) == 1
    assert run_cli(repo, "recall", "validate", "--json").code == 0
    real = repo / "shared-notes"
    write(real / "b.md", VALID.replace("4K9B", "4K9E"))
    os.symlink(real, repo / "notes")
    write(repo / ".mtlgit.yaml", "memories: notes\nrecall:\n  min_confidence: 0\n")
    assert [m["path"] for m in json.loads(run_cli(repo, "list", "--json").out)] == ["notes/b.md"]
    assert json.loads(run_cli(repo, "recall", "validate", "--json").out)["results"][0]["path"] == "notes/b.md"
    outside = tmp_path / "outside"
    write(outside / "c.md", VALID.replace("4K9B", "4K9F"))
    os.symlink(outside, repo / "notes" / "outside")
    assert len(json.loads(run_cli(repo, "list", "--json").out)) == 1  # a link out of the repository is not followed


def test_an_invalid_or_escaping_configuration_is_a_clear_error(repo: Path) -> None:
    for text, words in [
        ("memories: [a, b]\n", "'memories' must be a folder path"),
        ("memories: /etc\n", "points outside the repository"),
        ("model: [\n", "not valid YAML"),
        ("recall: {k: 0}\n", "'recall.k' must be a whole number"),
        ("recall: {mode: psychic}\n", "'recall.mode' must be one of"),
        ("reviewed_ref: --upload-pack=x\n", "'reviewed_ref' must be a git ref"),
        ("- just\n- a list\n", "not a mapping"),
    ]:
        write(repo / ".mtlgit.yaml", text)
        for command in (["list"], ["recall", "x"]):
            result = run_cli(repo, *command)
            assert result.code == 1 and words in result.err, (text, result.output)
            assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_pool_of_many_tiny_files(repo: Path) -> None:
    count = int(os.environ.get("MTLGIT_TINY_FILES", "100000"))
    folder = repo / "memories"
    for i in range(count):
        sub = folder / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"m{i}.md").write_text(f"---\nid: T{i}\ntitle: tiny {i}\nformat: insight\ndescription: d\n---\nw{i}\n")
    started = time.perf_counter()
    built = run_cli(repo, "index", "--json")
    assert built.code == 0, built.output
    assert json.loads(built.out)["memories"] == count
    assert time.perf_counter() - started < 600
    hit = json.loads(run_cli(repo, "recall", f"w{count - 1}", "--mode", "bm25", "-k", "1", "--json").out)
    assert hit["results"][0]["id"] == f"T{count - 1}"
