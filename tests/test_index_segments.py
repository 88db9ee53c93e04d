"""The index's unit layer, in process: segments and tombstones answer exactly as one rebuilt segment would.

A refresh writes only a small segment and a generation; these tests check that whatever sequence of changes and
refreshes happened, the live memories, their BM25 and dense scores and the top 10 equal those of a single-segment
index rebuilt from nothing, that segments merge when the policy says so, and that a reader of the previous
generation keeps working while a refresh replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlgit.embed import load_model
from mtlgit.index import RACY_NS, Snapshot, WorktreeIndex
from mtlgit.index.writer import MAX_DELTAS, plan_merge
from mtlgit.recall import bm25_scores, dense_scores
from mtlgit.repo import find_repo
from tests.conftest import SHARED_DATA, git, write

WORDS = (
    "apple pear plum cherry lemon grape melon mango peach fig kiwi lime date olive guava papaya quince banana "
    "retry timeout cache socket thread lock queue parser token buffer schema index commit branch merge rebase"
).split()
QUERIES = ["apple retry", "socket timeout lock", "merge rebase branch", "fig", "cache parser token queue", "zzz"]


def memory(memory_id: str, words: list[str], extra: str = "") -> str:
    title = " ".join(words[:3])
    head = f"---\nid: {memory_id}\ntitle: {title}\nformat: insight\ndescription: about {title}\n{extra}---\n"
    return head + " ".join(words) + "\n"


def in_the_past(path: Path, clock: list[int]) -> None:
    """A distinct mtime well before now: the stat is trusted, so unchanged files are not read again."""
    clock[0] += 1_000_000_000
    os.utime(path, ns=(clock[0], clock[0]))


def scores_by_path(snapshot: Snapshot, vector: np.ndarray) -> dict[str, Any]:
    """Every live memory's BM25 score for each query and its cosine with ``vector``, by path; and the top 10."""
    paths = snapshot.doc_paths(range(snapshot.n_docs))
    out: dict[str, Any] = {"dense": dict(zip(paths, dense_scores(snapshot, vector).tolist(), strict=True))}
    for query in QUERIES:
        bm25 = bm25_scores(snapshot, query.split())
        out[query] = dict(zip(paths, bm25.tolist(), strict=True))
    return out


def top10(scores: dict[str, float]) -> list[str]:
    return [path for path, _score in sorted(scores.items(), key=lambda item: (-item[1], item[0].split("/")))][:10]


def assert_same_top10(ours: dict[str, float], theirs: dict[str, float], name: str) -> None:
    """The same top 10; two memories may trade places only when their scores are equal to 1e-6 (a matrix
    product over maps of other shapes may round the last bit of two equal cosines apart)."""
    for mine, other in zip(top10(ours), top10(theirs), strict=True):
        if mine != other:
            assert abs(ours[mine] - ours[other]) <= 1e-6 and abs(theirs[mine] - theirs[other]) <= 1e-6, name


def assert_same_answers(refreshed: Snapshot, rebuilt: Snapshot, vector: np.ndarray) -> None:
    ours, theirs = scores_by_path(refreshed, vector), scores_by_path(rebuilt, vector)
    assert sorted(refreshed.files) == sorted(rebuilt.files)
    assert refreshed.problems() == rebuilt.problems()
    for key in ("docs", "files", "problem_files", "total_len"):
        assert refreshed.manifest[key] == rebuilt.manifest[key], key
    for name, table in ours.items():
        assert table.keys() == theirs[name].keys(), name
        for path, value in table.items():
            assert abs(value - theirs[name][path]) <= 1e-6, (name, path)
        assert_same_top10(table, theirs[name], name)
    mine = dict(
        zip(refreshed.doc_paths(range(refreshed.n_docs)), refreshed.records(range(refreshed.n_docs)), strict=True)
    )
    other = dict(zip(rebuilt.doc_paths(range(rebuilt.n_docs)), rebuilt.records(range(rebuilt.n_docs)), strict=True))
    assert mine == other


@pytest.fixture(scope="module")
def vector(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    model = load_model("default", Path.cwd(), tmp_path_factory.mktemp("models"))
    return np.asarray(model.encode_query("retry the socket after a timeout"), dtype=np.float32)


@pytest.fixture(scope="module")
def property_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("segments") / "repo"
    path.mkdir()
    git(path, "init", "-q")
    return path


NAMES = [f"m{n:02d}.md" for n in range(12)] + ["sub/a.md", "sub/b.md", "sub/deep/c.md", "x/y.md"]
IDS = [f"M{n}" for n in range(10)]
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(NAMES), st.sampled_from(IDS), st.integers(0, 2**31)),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(""), st.just(0)),
        st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES), st.just(0)),
        st.tuples(st.just("broken"), st.sampled_from(NAMES), st.just(""), st.just(0)),
        st.tuples(st.sampled_from(["refresh", "hinted"]), st.just(""), st.just(""), st.just(0)),
    ),
    max_size=14,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_any_sequence_of_changes_and_refreshes_scores_as_a_rebuild(
    property_repo: Path, vector: np.ndarray, operations: list[tuple[str, str, str, int]]
) -> None:
    check_sequence(property_repo, vector, operations)


# Issue 14 names 1,000 sequences: `MTLGIT_EDIT_SEQUENCES=1000` runs them (all passed, 1,241 s on a busy 2-core
# machine, about 1.2 s a sequence); the slow CI run keeps 300.
EDIT_SEQUENCES = int(os.environ.get("MTLGIT_EDIT_SEQUENCES", "300"))


@pytest.mark.slow
@settings(max_examples=EDIT_SEQUENCES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_many_sequences_of_changes_and_refreshes_score_as_a_rebuild(
    property_repo: Path, vector: np.ndarray, operations: list[tuple[str, str, str, int]]
) -> None:
    check_sequence(property_repo, vector, operations)


def check_sequence(repo: Path, vector: np.ndarray, operations: list[tuple[str, str, str, int]]) -> None:
    """Apply ``operations`` to a pool of 40 memories; at each refresh (by stats, or with the paths changed as a
    hint), the snapshot answers as one rebuilt from nothing."""
    folder = repo / "memories"
    shutil.rmtree(folder, ignore_errors=True)
    index = WorktreeIndex(find_repo(repo))
    shutil.rmtree(index.dir, ignore_errors=True)
    reference = WorktreeIndex(find_repo(repo))
    reference.dir = index.dir.parent / "reference-index"
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    rng = np.random.default_rng(7)
    # A base of 40 memories, so that small changes stay in delta segments before a merge.
    for n in range(40):
        path = write(folder / "base" / f"b{n:02d}.md", memory(f"B{n}", list(rng.choice(WORDS, 12))))
        in_the_past(path, clock)
    changed: set[str] = set()
    for operation, name, argument, seed in [("refresh", "", "", 0), *operations, ("refresh", "", "", 0)]:
        path = folder / name
        if operation == "write":
            words = list(np.random.default_rng(seed).choice(WORDS, 8))
            write(path, memory(argument, words, extra="tags: [fruit]\n" if seed % 3 == 0 else ""))
            in_the_past(path, clock)
            changed.add(f"memories/{name}")
        elif operation == "broken":
            write(path, "---\nid: [unclosed\n---\nbroken yaml\n")
            in_the_past(path, clock)
            changed.add(f"memories/{name}")
        elif operation == "delete" and path.exists():
            path.unlink()
            changed.add(f"memories/{name}")
        elif operation == "rename" and path.exists():
            target = folder / argument
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            changed.update({f"memories/{name}", f"memories/{argument}"})
        elif operation in ("refresh", "hinted"):
            if operation == "hinted" and index.current() is not None:
                refreshed = index.refresh(changed=changed)
            else:
                refreshed = index.fresh()
            changed = set()
            rebuilt = reference.refresh(rebuild=True)
            assert len(rebuilt.segments) <= 1
            assert_same_answers(refreshed, rebuilt, vector)


def make_base(repo: Path, count: int) -> list[int]:
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    rng = np.random.default_rng(count)
    for n in range(count):
        path = write(repo / "memories" / f"m{n:03d}.md", memory(f"M{n}", list(rng.choice(WORDS, 10))))
        in_the_past(path, clock)
    return clock


def test_a_refresh_writes_one_small_segment_and_keeps_the_base(repo: Path, vector: np.ndarray) -> None:
    clock = make_base(repo, 60)
    index = WorktreeIndex(find_repo(repo))
    base = index.refresh()
    assert len(base.segments) == 1 and base.segments[0].n_files == 60
    base_folder = base.segments[0].folder
    before = {p.name: p.stat().st_mtime_ns for p in base_folder.iterdir()}
    path = write(repo / "memories" / "m007.md", memory("M7", ["socket", "timeout", "retry"]))
    in_the_past(path, clock)
    (repo / "memories" / "m008.md").unlink()
    after = index.refresh()
    assert after.segments[0].folder == base_folder
    assert len(after.segments) == 2 and after.segments[1].n_files == 1
    assert {p.name: p.stat().st_mtime_ns for p in base_folder.iterdir()} == before  # the base is never rewritten
    assert after.n_docs == 59 and after.file_live(0).sum() == 58
    reference = WorktreeIndex(find_repo(repo))
    reference.dir = index.dir.parent / "reference"
    assert_same_answers(after, reference.refresh(rebuild=True), vector)


def test_the_changed_hint_looks_only_at_the_paths_named(repo: Path) -> None:
    clock = make_base(repo, 20)
    index = WorktreeIndex(find_repo(repo))
    index.refresh()
    for name, word in (("m001.md", "quokka"), ("m002.md", "wombat")):
        in_the_past(write(repo / "memories" / name, memory(name[:4].upper(), [word, "lesson"])), clock)
    hinted = index.refresh(changed=["memories/m001.md"])
    found = {word: bm25_scores(hinted, [word]).max() > 0 for word in ("quokka", "wombat")}
    assert found == {"quokka": True, "wombat": False}  # m002.md was not named, so not looked at
    full = index.refresh()
    assert bm25_scores(full, ["wombat"]).max() > 0


def test_segments_merge_when_the_deltas_cross_the_ratio(repo: Path) -> None:
    clock = make_base(repo, 24)
    index = WorktreeIndex(find_repo(repo))
    index.refresh()
    counts = []
    for n in range(8):
        in_the_past(write(repo / "memories" / f"new{n}.md", memory(f"N{n}", ["fig", "kiwi", str(n)])), clock)
        counts.append(len(index.refresh().segments))
    # A fourth delta merges the deltas into one; 24 * 0.25 = 6 files may wait in deltas, the seventh merges
    # everything into one base.
    assert MAX_DELTAS == 3
    assert counts == [2, 3, 4, 2, 3, 4, 1, 2]
    assert index.current() is not None and index.current().n_docs == 32  # type: ignore[union-attr]
    names = {p.name for p in index.dir.iterdir() if p.is_dir()}
    assert sum(1 for name in names if name.startswith("gen-")) <= 2  # the live and the previous generation


def test_the_merge_policy() -> None:
    assert plan_merge([1000], [1000]) == []
    assert plan_merge([700], [1000]) == [0]  # a base with too many tombstones is rewritten
    assert plan_merge([1000, 100, 100], [1000, 100, 100]) == []
    assert plan_merge([1000, 200, 100], [1000, 200, 100]) == [0, 1, 2]  # the deltas outgrew a quarter of it
    many = [10_000] + [1] * (MAX_DELTAS + 1)
    assert plan_merge(many, many) == list(range(1, MAX_DELTAS + 2))  # too many deltas: merged into one


def test_a_reader_of_the_previous_generation_still_works(repo: Path, vector: np.ndarray) -> None:
    clock = make_base(repo, 30)
    index = WorktreeIndex(find_repo(repo))
    index.refresh()
    in_the_past(write(repo / "memories" / "m003.md", memory("M3", ["olive", "guava"])), clock)
    held = index.refresh()  # a reader holds this generation (two segments)...
    expected = scores_by_path(held, vector)
    records = held.records(range(held.n_docs))
    in_the_past(write(repo / "memories" / "m004.md", memory("M4", ["zanzibar", "quince"])), clock)
    live = index.refresh()  # ...while a refresh replaces it
    assert live.folder != held.folder and held.folder.is_dir()
    assert scores_by_path(held, vector) == expected
    assert held.records(range(held.n_docs)) == records
    assert bm25_scores(live, ["zanzibar"]).max() > 0 and bm25_scores(held, ["zanzibar"]).max() == 0


def test_a_racy_file_is_compared_by_content_across_refreshes(repo: Path) -> None:
    make_base(repo, 5)
    index = WorktreeIndex(find_repo(repo))
    index.refresh()
    path = write(repo / "memories" / "m001.md", memory("M1", ["lemon", "lime"]))  # written now: racy
    first = index.refresh()
    assert [rel for rel, _blob in first.manifest.racy] == ["memories/m001.md"]
    stat = os.stat(path)
    path.write_text(memory("M1", ["melon", "mango"]))  # same size, same mtime: only the content tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = index.fresh()
    assert bm25_scores(second, ["mango"]).max() > 0
    assert time.time_ns() - second.manifest.built_ns < RACY_NS


SCIFACT = SHARED_DATA / "scifact"


def scifact_memory(memory_id: str, doc: dict[str, str]) -> str:
    title = json.dumps(doc["title"] or doc["text"][:80])
    head = f"---\nid: {memory_id}\ntitle: {title}\nformat: insight\ndescription: {title}\n---\n"
    return head + doc["text"] + "\n"


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact (non-commercial, not shipped) is not at {SCIFACT}")
def test_scifact_scores_after_edits_equal_a_rebuilt_index(repo: Path, vector: np.ndarray) -> None:
    lines = (SCIFACT / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:1500]
    docs = [json.loads(line) for line in lines]
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    folder = repo / "memories"
    for n, doc in enumerate(docs[:1200]):
        body = scifact_memory(f"S{doc['_id']}", doc)
        in_the_past(write(folder / f"s{n:04d}.md", body), clock)
    index = WorktreeIndex(find_repo(repo))
    index.refresh()
    rng = np.random.default_rng(3)
    for step in range(4):  # each step: some deleted, some edited, some added; each a delta segment
        for n in rng.choice(1200, 10, replace=False).tolist():
            (folder / f"s{n:04d}.md").unlink(missing_ok=True)
        for n in rng.choice(1200, 10, replace=False).tolist():
            path = folder / f"s{n:04d}.md"
            if path.exists():
                in_the_past(write(path, path.read_text() + f"\nedited {step}\n"), clock)
        for n, doc in enumerate(docs[1200 + 20 * step : 1220 + 20 * step]):
            body = scifact_memory(f"T{doc['_id']}", doc)
            in_the_past(write(folder / f"t{step}-{n:02d}.md", body), clock)
        index.refresh()
    refreshed = index.current()
    assert refreshed is not None and len(refreshed.segments) > 1 and refreshed.n_docs > 1000
    reference = WorktreeIndex(find_repo(repo))
    reference.dir = index.dir.parent / "reference"
    rebuilt = reference.refresh(rebuild=True)
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries-train.jsonl").read_text().splitlines()[:100]]
    from mtlgit.analysis import analyze

    paths_a = refreshed.doc_paths(range(refreshed.n_docs))
    paths_b = rebuilt.doc_paths(range(rebuilt.n_docs))
    for query in queries:
        terms = analyze(query)
        a = dict(zip(paths_a, bm25_scores(refreshed, terms).tolist(), strict=True))
        b = dict(zip(paths_b, bm25_scores(rebuilt, terms).tolist(), strict=True))
        assert a.keys() == b.keys()
        assert max(abs(a[p] - b[p]) for p in a) <= 1e-6, query
        assert top10(a) == top10(b), query
    dense_a = dict(zip(paths_a, dense_scores(refreshed, vector).tolist(), strict=True))
    dense_b = dict(zip(paths_b, dense_scores(rebuilt, vector).tolist(), strict=True))
    assert max(abs(dense_a[p] - dense_b[p]) for p in dense_a) <= 1e-6
