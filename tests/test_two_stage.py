"""Recall in two stages (a head-only first stage, the best few scored in full) answers as the exhaustive path,
and equal scores are ordered by path whatever segments the memories live in."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mtlgit import recall as recall_module
from mtlgit.embed import load_model
from mtlgit.index import segment as segment_module
from mtlgit.index.worktree import WorktreeIndex
from mtlgit.recall import Filters, Source, search, search_sources
from mtlgit.repo import find_repo
from tests.conftest import git, write
from tests.test_index_segments import in_the_past, memory

TOPICS = [
    "retry the socket after a timeout with exponential backoff",
    "pytest fixture scope leaks state between tests",
    "git rebase rewrites commits already pushed to the shared branch",
    "pandas merge duplicates rows when the key is not unique",
    "the shell expands variables inside a double quoted heredoc",
    "parse dates with an explicit timezone before comparing them",
    "lock the cache file before two processes write it",
    "the parser rejects a trailing comma in the json schema",
]
FILLER = (
    "apple pear plum cherry lemon grape melon mango peach fig kiwi lime date olive guava papaya quince banana "
    "queue token buffer index commit branch thread worker request response config module import error"
).split()
QUERIES = [
    "the network call times out: retry it",
    "tests pass alone but fail together",
    "force push after a rebase broke the team's branch",
    "merge gives more rows than expected",
    "heredoc expands $HOME",
    "two writers corrupt the cache",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_model("default", Path.cwd(), tmp_path_factory.mktemp("models"))


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WorktreeIndex:
    """600 memories in a base segment with moments, then edits that tombstone some of its rows (a delta
    segment) and a retired memory that the filters leave out."""
    monkeypatch.setattr(segment_module, "MOMENTS_MIN_DOCS", 100)
    # Word bags drawn at random are far harder for a head than real text: with 64 dimensions their top 10 is
    # within the first stage's top 200 + k. Agreement on real text is benchmarks/bench_two_stage.py's to measure.
    monkeypatch.setattr(segment_module, "HEAD_DIMS", 64)
    git(tmp_path, "init", "-q")
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    rng = np.random.default_rng(11)
    for n in range(600):
        words = TOPICS[n % len(TOPICS)].split() + list(rng.choice(FILLER, 6))
        rng.shuffle(words)
        in_the_past(write(tmp_path / "memories" / f"m{n:03d}.md", memory(f"M{n}", words)), clock)
    index = WorktreeIndex(find_repo(tmp_path))
    assert index.fresh().segments[0].moments() is not None
    for n in (3, 17, 250):
        words = TOPICS[(n + 1) % len(TOPICS)].split() + list(rng.choice(FILLER, 4))
        in_the_past(write(tmp_path / "memories" / f"m{n:03d}.md", memory(f"M{n}", words)), clock)
    retired = memory("M9", TOPICS[1].split(), extra="status: retired\n")
    in_the_past(write(tmp_path / "memories" / "m009.md", retired), clock)
    snapshot = index.fresh()
    assert len(snapshot.segments) == 2  # the base keeps its moments; four of its rows are tombstoned
    return index


def test_the_moments_give_the_exact_sums_with_tombstones_and_filters(pool: WorktreeIndex, model) -> None:  # type: ignore[no-untyped-def]
    snapshot = pool.fresh()
    vector = np.asarray(model.encode_query(QUERIES[0]), dtype=np.float32)
    mask = recall_module.candidate_mask(snapshot, Filters())
    assert 0 < int((~mask).sum())  # the retired memory is left out
    head, sums = snapshot.dense_stage(vector, mask)
    dense = snapshot.dense_scores(vector)[mask].astype(np.float64)
    split = snapshot.segments[0].head_dims
    expected_head = np.concatenate([seg.vectors()[:, :split] @ vector[:split] for seg in snapshot.segments])
    live = np.concatenate(
        [rows + sum(s.n_docs for s in snapshot.segments[:n]) for n, rows in enumerate(snapshot.segment_rows())]
    )
    h = expected_head[live][mask].astype(np.float64)
    np.testing.assert_allclose(head, h, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        sums, [len(h), h.sum(), h @ h, dense.sum(), dense @ dense, h @ dense], rtol=1e-6, atol=1e-6
    )


def test_a_segment_asked_again_scores_its_head_from_a_transposed_copy_alike(pool: WorktreeIndex, model) -> None:  # type: ignore[no-untyped-def]
    """A long-lived process (the MCP server) asks a segment's head again and again: from the second time the
    segment keeps its head transposed (a faster product); the scores stay those of the stored head."""
    segment = pool.fresh().segments[0]
    split = segment.head_dims
    stored = segment.vectors()[:, :split]
    for query in QUERIES[:3]:
        vector = np.asarray(model.encode_query(query), dtype=np.float32)
        np.testing.assert_allclose(segment.head_scores(vector), stored @ vector[:split], rtol=0, atol=1e-6)
        if query == QUERIES[0]:
            assert segment._head_t is None  # one recall of a one-shot process: no copy
    assert segment._head_t is not None and segment._head_t.shape == (split, segment.n_docs)


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_two_stages_answer_as_the_exhaustive_path(  # type: ignore[no-untyped-def]
    pool: WorktreeIndex, model, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hybrid recall rescoring a third of the pool answers as the exhaustive path; dense recall is always
    exhaustive (no BM25 half carries a memory its head underrates into the rescored set)."""
    if mode == "dense":
        monkeypatch.setattr(recall_module, "RESCORE", 1)
    snapshot = pool.fresh()
    for query in QUERIES:
        vector = model.encode_query(query)
        monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 10**9)
        exhaustive = search(snapshot, query, vector, k=10, mode=mode)
        monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 100)
        if mode == "hybrid":
            monkeypatch.setattr(recall_module, "RESCORE", 200)  # of 600: this made-up text's first stage is rough
        two_stage = search(snapshot, query, vector, k=10, mode=mode)
        assert [h.path for h in two_stage] == [h.path for h in exhaustive], query
        for ours, theirs in zip(two_stage, exhaustive, strict=True):
            assert ours.score == pytest.approx(theirs.score, abs=1e-5)
            assert ours.dense == pytest.approx(theirs.dense, abs=1e-6)
            assert ours.bm25 == theirs.bm25
            assert ours.confidence == pytest.approx(theirs.confidence, abs=1e-5)
        assert "memories/m009.md" not in [h.path for h in two_stage]


def _answers_lost_to_the_bar(  # type: ignore[no-untyped-def]
    pool: WorktreeIndex, model, monkeypatch: pytest.MonkeyPatch, by_confidence: int, wide: int
) -> int:
    """How many of QUERIES two-stage recall answers otherwise than the exhaustive path, with a bar that about
    five memories clear (fewer than k=10), one memory rescored for the fused ranking, ``by_confidence`` for the
    bar and ``wide`` when fewer than k of those clear it."""
    snapshot = pool.fresh()
    lost = 0
    for query in QUERIES:
        vector = model.encode_query(query)
        monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 10**9)
        ranked = sorted((h.confidence for h in search(snapshot, query, vector, k=600)), reverse=True)
        # Midway between the fifth and sixth: a bar at a memory's own confidence would test the last bit of a
        # cosine, which BLAS rounds differently for different numbers of rows.
        bar = (ranked[4] + ranked[5]) / 2
        exhaustive = search(snapshot, query, vector, k=10, min_confidence=bar)
        assert 5 <= len(exhaustive) < 10
        monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 100)
        monkeypatch.setattr(recall_module, "MIN_MATCHED", 1)
        monkeypatch.setattr(recall_module, "RESCORE", 1)
        monkeypatch.setattr(recall_module, "BAR_RESCORE", by_confidence)
        monkeypatch.setattr(recall_module, "BAR_RESCORE_WIDE", wide)
        two_stage = search(snapshot, query, vector, k=10, min_confidence=bar)
        lost += [h.path for h in two_stage] != [h.path for h in exhaustive]
    return lost


@pytest.mark.parametrize(("by_confidence", "kept"), [(0, False), (30, True)])
def test_a_memory_that_clears_the_bar_is_never_left_outside_the_rescored_set(  # type: ignore[no-untyped-def]
    pool: WorktreeIndex, model, monkeypatch: pytest.MonkeyPatch, by_confidence: int, kept: bool
) -> None:
    """The bar weighs raw scores, the first stage fused ones: the rescored set also holds the best by estimated
    confidence, so recall returns every memory above the bar the exhaustive path returns. Here 30 of 600 are
    rescored for the bar, with no second tier; with none, a memory above the bar is lost."""
    lost = _answers_lost_to_the_bar(pool, model, monkeypatch, by_confidence, wide=by_confidence)
    assert (lost == 0) if kept else lost > 0


@pytest.mark.parametrize("wide", [0, 60])
def test_when_fewer_than_k_clear_the_bar_a_wider_set_is_scored(  # type: ignore[no-untyped-def]
    pool: WorktreeIndex, model, monkeypatch: pytest.MonkeyPatch, wide: int
) -> None:
    """With 2 rescored by estimated confidence, memories above the bar are lost; when fewer than k clear it,
    the best 60 by estimated confidence are scored too, and recall answers as the exhaustive path."""
    lost = _answers_lost_to_the_bar(pool, model, monkeypatch, 2, wide)
    assert (lost == 0) if wide else lost > 0


def test_a_query_few_memories_hold_a_word_of_is_scored_in_full(  # type: ignore[no-untyped-def]
    pool: WorktreeIndex, model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misspelt query matches few memories by BM25, and the head alone cannot rank the rest (as in dense
    mode): it is scored in full and answers as the exhaustive path, at k 1 to 10 with no bar."""
    snapshot = pool.fresh()
    query = "retrx the sockex aftex a timeoux"
    vector = model.encode_query(query)
    monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 10**9)
    exhaustive = search(snapshot, query, vector, k=10, min_confidence=0.0)
    monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 100)
    monkeypatch.setattr(recall_module, "RESCORE", 1)
    monkeypatch.setattr(recall_module, "BAR_RESCORE", 1)
    monkeypatch.setattr(recall_module, "BAR_RESCORE_WIDE", 1)
    for k in (1, 3, 10):
        two_stage = search(snapshot, query, vector, k=k, min_confidence=0.0)
        assert [h.path for h in two_stage] == [h.path for h in exhaustive[:k]], k


def test_two_stages_never_score_every_candidate_even_when_nothing_clears_the_bar(  # type: ignore[no-untyped-def]
    pool: WorktreeIndex, model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recall that finds nothing above the bar ("nothing applies") scores only the rescored set in full, as
    any other: no product over every vector."""
    snapshot = pool.fresh()
    monkeypatch.setattr(recall_module, "TWO_STAGE_MIN", 100)
    monkeypatch.setattr(recall_module, "MIN_MATCHED", 1)
    monkeypatch.setattr(recall_module, "RESCORE", 50)
    monkeypatch.setattr(recall_module, "BAR_RESCORE", 50)
    monkeypatch.setattr(recall_module, "BAR_RESCORE_WIDE", 100)
    whole = []
    scored = snapshot.dense_scores

    def counted(vector: np.ndarray, rows: np.ndarray | None = None, heads: np.ndarray | None = None) -> np.ndarray:
        whole.append(rows is None)
        return scored(vector, rows, heads)

    monkeypatch.setattr(snapshot, "dense_scores", counted)
    hits = recall_module.search_sources(
        [recall_module.Source(snapshot)], QUERIES[0], model.encode_query(QUERIES[0]), k=3, min_confidence=0.999
    )
    assert hits == []
    assert whole and not any(whole)


def test_equal_scores_are_ordered_by_path_not_by_segment(tmp_path: Path) -> None:
    """Two memories of the same text tie; refreshing the first (it moves to a delta segment, after the other's
    row) must not swap them, or a refreshed index would answer otherwise than a rebuilt one."""
    repo = tmp_path
    git(repo, "init", "-q")
    text = "the flaky integration test needs a fixed random seed"
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    for name, memory_id in (("a.md", "TA"), ("b.md", "TB")):
        in_the_past(write(repo / "memories" / "ties" / name, memory(memory_id, text.split())), clock)
    rng = np.random.default_rng(3)
    for n in range(40):  # a base large enough that one changed memory stays in a delta segment
        in_the_past(write(repo / "memories" / f"m{n:02d}.md", memory(f"M{n}", list(rng.choice(FILLER, 8)))), clock)
    index = WorktreeIndex(find_repo(repo))
    query = "flaky integration test random seed"
    first = search(index.fresh(), query, None, k=2, mode="bm25")
    assert [h.path for h in first] == ["memories/ties/a.md", "memories/ties/b.md"]
    assert first[0].score == first[1].score
    changed = memory("TA", text.split(), extra="outcome: failure\n")  # not part of the text: the scores stay equal
    in_the_past(write(repo / "memories" / "ties" / "a.md", changed), clock)
    refreshed = index.fresh()
    assert len(refreshed.segments) > 1  # a.md now lives in a delta segment, after b.md's row
    again = search(refreshed, query, None, k=2, mode="bm25")
    assert [h.path for h in again] == ["memories/ties/a.md", "memories/ties/b.md"]


def test_the_best_of_the_first_stage_are_the_largest_values() -> None:
    """The first stage's selection (a threshold from a sample, then a partition of what clears it) takes values
    as large as a partition of every value takes, with ties, and with fewer values than asked."""
    rng = np.random.default_rng(5)
    for n, count in ((100_000, 303), (50_000, 100), (5_000, 4_000), (200, 300)):
        head = rng.standard_normal(n).astype(np.float32)
        bm25 = np.where(rng.random(n) < 0.2, rng.exponential(2.0, n), 0.0).astype(np.float32)
        for a, b in ((0.7, 0.2), (0.0, 1.0), (1.0, 0.0)):
            got = recall_module._best(head, a, bm25, b, count)
            value = head * np.float32(a) + bm25 * np.float32(b)
            assert len(got) == len(set(got.tolist())) == min(n, count)
            np.testing.assert_array_equal(np.sort(value[got]), np.sort(value)[len(value) - len(got) :])


def test_the_bm25_spread_of_the_first_stage_is_numpys_and_falls_back_where_one_pass_loses_digits() -> None:
    rng = np.random.default_rng(7)
    sparse = np.zeros(100_000, dtype=np.float32)  # BM25 over a pool: most memories hold no word of the query
    sparse[rng.choice(100_000, 20_000, replace=False)] = rng.gamma(2.0, 3.0, 20_000)
    mean, spread = recall_module._mean_sd(sparse)
    assert mean == pytest.approx(float(sparse.mean()), rel=1e-6)
    assert spread == pytest.approx(float(sparse.std()), rel=1e-6)
    # Every memory holding a common word, scores close together: sum and dot product would lose digits to
    # cancellation (1e-4 off here), so the two-pass std is taken as it is.
    close = (5.0 + 0.01 * rng.standard_normal(100_000)).astype(np.float32)
    assert recall_module._mean_sd(close)[1] == float(close.std())


def test_scores_within_float_rounding_are_ties_ordered_by_path() -> None:
    """The same memory's fused score differs in its last digits with how many rows BLAS was handed (a duplicate
    scored among 3 rows or among 300): such scores are ties, ordered by path, then pool; real gaps by score."""
    score = np.array([8.0853001, 8.0853, 9.5, 8.0853002, 7.0])
    paths = {0: "memories/b.md", 1: "memories/c.md", 2: "memories/z.md", 3: "memories/a.md", 4: "memories/0.md"}
    pools = ["local", "local", "local", "team", "local"]
    assert recall_module._ranked(paths, score, pools) == [2, 3, 0, 1, 4]
    assert recall_module._ranked({0: "memories/x.md", 1: "memories/x.md"}, np.array([1.0, 1.0]), ["t", "a"]) == [1, 0]


def test_the_first_answer_for_k_2_is_the_answer_for_k_1_when_ties_chain(tmp_path: Path) -> None:
    """Three equal memories whose scores a prior sets 0.7e-5 apart (each pair within TIE of the next, the
    first and last 1.4e-5 apart): a run of ties is measured from its best, so the answer for k=1 is the first
    answer for k=2 (a chain measured step by step took in the third for k=2 only, and put it first by path)."""
    git(tmp_path, "init", "-q")
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    same = "lockfile pinned before upgrading packages".split()
    for name, memory_id in (("a", "MA"), ("b", "MB"), ("c", "MC")):
        in_the_past(write(tmp_path / "memories" / f"{name}.md", memory(memory_id, same)), clock)
    for n in range(20):
        words = f"unrelated filler note number {n} about cherries".split()
        in_the_past(write(tmp_path / "memories" / f"z{n:02d}.md", memory(f"Z{n}", words)), clock)
    snapshot = WorktreeIndex(find_repo(tmp_path)).fresh()
    terms = recall_module.analyze(recall_module.prepare("lockfile").lexical)
    spread = float(recall_module.bm25_scores(snapshot, terms).std())
    # b.md the best, then c.md 0.7e-5 below, then a.md 0.7e-5 below that.
    gap = {b"MB": 0.0, b"MC": -0.7e-5, b"MA": -1.4e-5}

    def prior(ids: np.ndarray) -> np.ndarray:
        return np.array([gap.get(bytes(i), -1.0) / spread for i in ids], dtype=np.float64)

    def answer(k: int) -> list[str]:
        hits = search_sources([Source(snapshot)], "lockfile", None, k=k, mode="bm25", prior=prior)
        return [hit.path for hit in hits]

    one, two = answer(1), answer(2)
    assert one == [two[0]], (one, two)


def test_the_transposed_head_outlives_a_refresh_that_keeps_the_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh (any memory added or edited) opens a new generation whose segments are new objects: the
    segment it keeps shares the transposed head a long-lived process made, which is not made again after
    every write."""
    monkeypatch.setattr(segment_module, "MOMENTS_MIN_DOCS", 10)
    git(tmp_path, "init", "-q")
    clock = [time.time_ns() - 3600 * 1_000_000_000]
    for n in range(40):
        words = f"note {n} about retrying the socket after a timeout".split()
        in_the_past(write(tmp_path / "memories" / f"m{n:02d}.md", memory(f"M{n}", words)), clock)
    index = WorktreeIndex(find_repo(tmp_path))
    before = index.fresh()
    base = before.segments[0]
    vector = np.zeros(len(base.vectors(np.arange(1))[0]), dtype=np.float32)
    vector[0] = 1.0
    base.head_scores(vector)
    base.head_scores(vector)
    assert base._head_t is not None  # the copy is made
    in_the_past(write(tmp_path / "memories" / "new.md", memory("NEW", "one more note".split())), clock)
    after = index.fresh(before)
    [same] = [seg for seg in after.segments if seg.name == base.name]
    assert same is not base and same._head_t is base._head_t
