"""A refresh costs the change, not the pool: it looks up only the files named, and looks for duplicate ids only
among those that may have changed; and the recall settings reach every kind of snapshot the same way.

In process, with real git repositories: a hinted refresh must answer exactly as a rebuild does.
"""

from __future__ import annotations

import os
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from mtlgit.config import Config, load_config
from mtlgit.embed import load_model
from mtlgit.index import Snapshot, WorktreeIndex, rev_snapshot
from mtlgit.index.common import PATHS, IndexCorrupt, path_key
from mtlgit.index.manifest import RECALL_SETTINGS, Manifest
from mtlgit.index.writer import MAX_SUSPECTS, _duplicates
from mtlgit.repo import find_repo
from tests.conftest import git, write
from tests.test_index_segments import assert_same_answers, in_the_past, memory


@pytest.fixture(scope="module")
def vector(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    model = load_model("default", Path.cwd(), tmp_path_factory.mktemp("models"))
    return np.asarray(model.encode_query("a plum and a lemon"), dtype=np.float32)


def rebuilt(repo: Path) -> Snapshot:
    reference = WorktreeIndex(find_repo(repo))
    reference.dir = reference.dir.parent / "reference"
    return reference.refresh(rebuild=True)


def all_duplicates(snapshot: Snapshot) -> tuple[list[list[int]], list[dict[str, object]]]:
    """The duplicates of ``snapshot`` found by sorting every id (no suspects)."""
    live = [snapshot.file_live(n) for n in range(len(snapshot.segments))]
    return _duplicates(list(snapshot.segments), live, None)


def test_a_hinted_refresh_of_a_folder_takes_every_file_below_it_and_no_other(repo: Path, vector: np.ndarray) -> None:
    """Files below a folder are one run of a segment's paths in the working tree's order, found by bisection:
    "sub.md" (after "sub/..." in that order) and "subway/" (a name sharing the prefix) are not in it."""
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    folder = repo / "memories"
    names = ["a.md", "sub/a.md", "sub/deep/b.md", "sub/z.md", "sub.md", "subway/c.md", "z.md"]
    for n, name in enumerate(names):
        in_the_past(write(folder / name, memory(f"F{n}", ["fig", "kiwi", f"word{n}"])), clock)
    index = WorktreeIndex(find_repo(repo))
    base = index.refresh()
    assert base.segments[0].paths == sorted(base.segments[0].paths, key=path_key)
    for name in ("sub/a.md", "sub/deep/b.md", "sub/z.md"):
        (folder / name).unlink()
    (folder / "sub" / "deep").rmdir()
    os.replace(folder / "sub", folder / "moved")
    after = index.refresh(changed=["memories/sub", "memories/moved"])
    assert after.files == [f"memories/{name}" for name in ("a.md", "sub.md", "subway/c.md", "z.md")]
    assert_same_answers(after, rebuilt(repo), vector)


def test_duplicate_ids_are_found_as_a_rebuild_finds_them_through_refreshes(repo: Path, vector: np.ndarray) -> None:
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    folder = repo / "memories"
    for n in range(30):
        in_the_past(write(folder / f"m{n:02d}.md", memory(f"M{n}", ["plum", "lemon", f"w{n}"])), clock)
    in_the_past(write(folder / "m05-copy.md", memory("M5", ["plum", "copy"])), clock)  # M5 twice
    index = WorktreeIndex(find_repo(repo))
    snapshot = index.refresh()
    assert len(snapshot.manifest.dead_docs) == 1

    steps = [
        ("an unrelated edit keeps the duplicate", lambda: write(folder / "m09.md", memory("M9", ["pear"]))),
        ("a third memory of the id", lambda: write(folder / "x.md", memory("m5", ["pear", "third"]))),
        ("another id used twice", lambda: write(folder / "m20-copy.md", memory("M20", ["fig"]))),
        ("the first holder deleted", lambda: (folder / "m05-copy.md").unlink()),
        ("every other holder deleted", lambda: [(folder / n).unlink() for n in ("m05.md", "x.md", "m20-copy.md")]),
    ]
    names = {"m09.md", "x.md", "m20-copy.md", "m05-copy.md", "m05.md"}
    for what, step in steps:
        step()
        for name in names:
            if (folder / name).exists():
                in_the_past(folder / name, clock)
        snapshot = index.refresh(changed=[f"memories/{name}" for name in sorted(names)])
        assert len(snapshot.segments) > 1, what  # deltas, so the suspects are what is looked at
        assert (snapshot.manifest.dead_docs, snapshot.dup_problems()) == all_duplicates(snapshot), what
        assert_same_answers(snapshot, rebuilt(repo), vector)
    assert snapshot.manifest.dead_docs == [] and snapshot.dup_problems() == []


def test_too_many_suspects_sort_every_id(repo: Path) -> None:
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    folder = repo / "memories"
    for n in range(10):
        in_the_past(write(folder / f"m{n}.md", memory(f"M{n}", ["plum"])), clock)
    index = WorktreeIndex(find_repo(repo))
    index.refresh()
    for n in range(MAX_SUSPECTS + 1):  # more new ids than are looked for one at a time
        in_the_past(write(folder / "new" / f"n{n:03d}.md", memory(f"N{n}", ["fig"])), clock)
    in_the_past(write(folder / "new" / "again.md", memory("M3", ["fig"])), clock)
    snapshot = index.refresh(changed=["memories/new"])
    assert snapshot.manifest.dead_docs == all_duplicates(snapshot)[0] != []


CONFIGURED = {
    "memories": "notes",
    "model": "default",
    "k": 7,
    "mode": "bm25",
    "min_confidence": 0.25,
    "budget": 900,
    "freshness": "folders",
    "reviewed_ref": "origin/reviewed",
}


def test_every_recall_setting_of_the_configuration_reaches_each_kind_of_manifest(repo: Path) -> None:
    # A setting added to Config must be added to RECALL_SETTINGS (or be one of the three that are not settings).
    assert set(RECALL_SETTINGS) == {f.name for f in fields(Config)} - {"raw", "path", "pools"}
    assert set(CONFIGURED) == set(RECALL_SETTINGS)
    (repo / ".mtlgit.yaml").write_text(
        "memories: notes\nmodel: default\nreviewed_ref: origin/reviewed\n"
        "recall:\n  k: 7\n  mode: bm25\n  min_confidence: 0.25\n  budget: 900\n  freshness: folders\n",
        encoding="utf-8",
    )
    write(repo / "notes" / "a.md", memory("A1", ["plum", "lemon"]))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "notes")
    config = load_config(repo)
    assert {name: getattr(config, name) for name in RECALL_SETTINGS} == CONFIGURED
    worktree = WorktreeIndex(find_repo(repo)).refresh().manifest
    revision = rev_snapshot(find_repo(repo), "HEAD").manifest
    pool = Manifest.from_config(config, "pool", memories="elsewhere")
    for name, value in CONFIGURED.items():
        assert worktree[name] == value, name
        assert revision[name] == value, name
        assert pool[name] == (value if name != "memories" else "elsewhere"), name
    head = git(repo, "rev-parse", "HEAD").strip()
    assert (worktree.kind, revision.kind, revision.commit) == ("worktree", "rev", head)


def test_a_refresh_hands_over_the_segments_it_kept_open(repo: Path) -> None:
    """The recall that follows a refresh does not read the kept segments' paths again: the refresh read them."""
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    for n in range(12):
        in_the_past(write(repo / "memories" / f"m{n:02d}.md", memory(f"M{n}", ["plum", f"w{n}"])), clock)
    index = WorktreeIndex(find_repo(repo))
    base = index.refresh().segments[0].folder
    in_the_past(write(repo / "memories" / "m03.md", memory("M3", ["quince"])), clock)
    after = index.refresh(changed=["memories/m03.md"])
    assert after.segments[0].folder == base and len(after.segments) == 2
    hidden = base / f"{PATHS}.away"
    os.replace(base / PATHS, hidden)
    try:
        assert after.doc_paths([0, 10]) == ["memories/m00.md", "memories/m11.md"]  # rows of the base
        with pytest.raises(IndexCorrupt, match=PATHS):
            Snapshot(after.folder).doc_paths([0])  # opened anew, it reads them
    finally:
        os.replace(hidden, base / PATHS)
