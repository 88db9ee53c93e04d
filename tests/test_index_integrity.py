"""Index integrity: any path, no lost memory under races, no damaged file served, read-only and full disks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlgit import rules
from mtlgit.cache import BlobCache
from mtlgit.gitobjects import object_ids
from mtlgit.index import PATHS, RACY_NS, Snapshot, WorktreeIndex, is_fresh, manifest_bytes, open_current
from mtlgit.repo import find_repo
from tests.conftest import git, run_cli, write


def memory(memory_id: str, title: str, body: str = "", extra: str = "") -> str:
    return (
        f"---\nid: {memory_id}\ntitle: {title}\nformat: insight\ndescription: about {title}\n{extra}---\n"
        f"{body or title}\n"
    )


def index_dir(repo: Path) -> Path:
    return find_repo(repo).worktree_state_dir / "index"


def live(repo: Path) -> Snapshot:
    snapshot = open_current(index_dir(repo))
    assert snapshot is not None
    return snapshot


# --- paths that hold any byte ---------------------------------------------------------------------------------


NEWLINE_NAME = "memories/gen/a\nb.md"


def test_a_file_name_with_a_newline_is_listed_recalled_and_rebuilt(repo: Path) -> None:
    write(repo / "memories" / "gen" / "0-first.md", memory("M0", "first lesson about apples"))
    write(repo / NEWLINE_NAME, memory("M1", "newline lesson about zebras"))
    write(repo / "memories" / "gen" / "z-last.md", memory("M2", "last lesson about yaks"))
    for command in (["list", "--json"], ["stats"], ["recall", "zebras", "--json"], ["index", "--rebuild"]):
        result = run_cli(repo, *command)
        assert result.code == 0, (command, result.output)
    listed = {m["id"]: m["path"] for m in json.loads(run_cli(repo, "list", "--json").out)}
    assert listed == {"M0": "memories/gen/0-first.md", "M1": NEWLINE_NAME, "M2": "memories/gen/z-last.md"}
    hits = json.loads(run_cli(repo, "recall", "yaks", "--mode", "bm25", "-k", "1", "--json").out)["results"]
    assert hits[0]["path"] == "memories/gen/z-last.md"


def test_a_snapshot_read_from_git_objects_keeps_every_path_after_a_newline_name(repo: Path) -> None:
    write(repo / NEWLINE_NAME, memory("M1", "newline lesson about zebras"))
    write(repo / "memories" / "gen" / "b.md", memory("M2", "next lesson about yaks"))
    write(repo / "memories" / "gen" / "c.md", memory("M3", "third lesson about gnus"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "memories")
    for word, path in (("zebras", NEWLINE_NAME), ("yaks", "memories/gen/b.md"), ("gnus", "memories/gen/c.md")):
        result = run_cli(repo, "recall", word, "--rev", "HEAD", "--mode", "bm25", "-k", "1", "--json")
        assert result.code == 0, result.output
        assert json.loads(result.out)["results"][0]["path"] == path


def test_object_ids_of_paths_with_newlines_and_missing_names(repo: Path) -> None:
    write(repo / NEWLINE_NAME, memory("M1", "newline"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    blob = git(repo, "rev-parse", f"HEAD:{NEWLINE_NAME}").strip()
    names = [f"HEAD:{NEWLINE_NAME}", "HEAD:missing\nname.md", f"HEAD:{NEWLINE_NAME}", "HEAD:nope.md"]
    assert object_ids(find_repo(repo), names) == [blob, "", blob, ""]


def test_a_file_name_that_is_not_utf8_is_indexed(repo: Path) -> None:
    raw = os.fsencode(repo / "memories") + b"/caf\xe9.md"
    with open(raw, "w", encoding="utf-8") as handle:
        handle.write(memory("M1", "latin one lesson about quinces"))
    snapshot = WorktreeIndex(find_repo(repo)).refresh()
    assert snapshot.n_docs == 1
    assert os.fsencode(snapshot.doc_paths([0])[0]) == b"memories/caf\xe9.md"
    assert live(repo).files == snapshot.files


# --- races: a snapshot never trusts a folder that changed while it was listed ----------------------------------


def test_a_file_added_while_the_folders_are_listed_is_not_lost(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = repo / "memories"
    write(folder / "a.md", memory("M1", "first"))
    real_scan = rules.scan_memories

    def scan_then_add(*args: Any, **kwargs: Any) -> Any:
        found = real_scan(*args, **kwargs)
        write(folder / "late.md", memory("M2", "added while listing"))  # another writer, just after the listing
        return found

    monkeypatch.setattr(rules, "scan_memories", scan_then_add)
    index = WorktreeIndex(find_repo(repo))
    snapshot = index.refresh(rebuild=True)
    monkeypatch.setattr(rules, "scan_memories", real_scan)
    assert snapshot.files == ["memories/a.md"]
    assert not is_fresh(snapshot, repo)
    assert index.fresh().files == ["memories/a.md", "memories/late.md"]


def test_a_change_within_the_same_mtime_tick_as_the_listing_is_seen(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = repo / "memories"
    write(folder / "a.md", memory("M1", "first"))
    real_scan = rules.scan_memories

    def scan_then_add_unseen(*args: Any, **kwargs: Any) -> Any:
        before = os.stat(folder).st_mtime_ns
        found = real_scan(*args, **kwargs)
        write(folder / "late.md", memory("M2", "added in the same tick"))
        os.utime(folder, ns=(before, before))  # a coarse clock: the folder's mtime did not move
        return found

    monkeypatch.setattr(rules, "scan_memories", scan_then_add_unseen)
    snapshot = WorktreeIndex(find_repo(repo)).refresh(rebuild=True)
    monkeypatch.setattr(rules, "scan_memories", real_scan)
    assert snapshot.manifest["racy_dirs"], "a folder written just now must be checked by its names"
    assert not is_fresh(snapshot, repo)


def test_a_configuration_changed_within_the_same_tick_as_the_build_is_seen(repo: Path) -> None:
    write(repo / "memories" / "a.md", memory("M1", "first"))
    config = repo / ".mtlgit.yaml"
    snapshot = WorktreeIndex(find_repo(repo)).refresh(rebuild=True)
    assert snapshot.manifest["config_racy"], "the configuration was written just now"
    before = os.stat(config)
    config.write_text(config.read_text().replace("k: 3", "k: 5"))  # same size, same inode
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not is_fresh(snapshot, repo)
    assert WorktreeIndex(find_repo(repo)).fresh().manifest["k"] == 5


def test_an_old_folder_is_trusted_by_its_mtime_alone(repo: Path) -> None:
    folder = repo / "memories"
    write(folder / "a.md", memory("M1", "first"))
    past = time.time_ns() - 10 * RACY_NS
    os.utime(folder / "a.md", ns=(past, past))
    os.utime(folder, ns=(past, past))
    os.utime(repo / ".mtlgit.yaml", ns=(past, past))
    snapshot = WorktreeIndex(find_repo(repo)).refresh(rebuild=True)
    assert snapshot.manifest["racy_dirs"] == [] and snapshot.manifest["racy"] == []
    assert snapshot.manifest["config_racy"] is None
    assert is_fresh(snapshot, repo)


# --- refresh equals rebuild -----------------------------------------------------------------------------------


def snapshot_content(snapshot: Snapshot) -> dict[str, Any]:
    """Everything a snapshot answers with, memory by memory in path order (rows and segments may differ)."""
    rows = range(snapshot.n_docs)
    paths = snapshot.doc_paths(rows)
    order = sorted(rows, key=lambda row: paths[row].split("/"))
    records = snapshot.record_lines(order)
    blobs, ids = snapshot.doc_blobs().tolist(), snapshot.ids()
    codes = {name: snapshot.codes(name).tolist() for name in ("format", "status", "scope", "outcome")}
    vectors = [vector.tolist() for _start, block in snapshot.vector_blocks() for vector in block]
    out: dict[str, Any] = {"files": snapshot.files, "problems": snapshot.problems()}
    out["memories"] = [
        (
            paths[row],
            blobs[row],
            ids[row],
            [codes[name][row] for name in codes],
            sorted(snapshot.labels_of(row)),
            sorted(snapshot.terms_of(row)),
            vectors[row],
            records[n],
        )
        for n, row in enumerate(order)
    ]
    out["blobs"] = {path: snapshot.blob_of(path) for path in snapshot.files}
    for key in ("docs", "files", "problem_files", "total_len"):
        out[key] = snapshot.manifest[key]
    return out


CONTENTS = [
    memory("M1", "apples and pears", extra="tags: [fruit]\n"),
    memory("M2", "bananas", extra="domains: [kitchen]\n"),
    memory("M1", "apples again, a copy keeps its id"),
    memory("01JDQ2V6R3J8Z6TT4M0S3W4K9B", "a valid ulid about cherries"),
    "no front matter at all\n",
    "---\nid: [unclosed\n---\nbroken yaml\n",
    memory("M3", "retired damsons", extra="status: retired\n"),
]
NAMES = ["a.md", "b.md", "sub/c.md", "sub/deeper/d.md", "e.md"]
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(NAMES), st.integers(0, len(CONTENTS) - 1)),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just(0)),
        st.tuples(st.just("rename"), st.sampled_from(NAMES), st.integers(0, len(NAMES) - 1)),
        st.tuples(st.just("refresh"), st.just(""), st.just(0)),
    ),
    max_size=10,
)


@pytest.fixture(scope="module")
def property_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("property") / "repo"
    path.mkdir()
    git(path, "init", "-q")
    return path


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_any_sequence_of_changes_and_refreshes_gives_the_snapshot_of_a_rebuild(
    property_repo: Path, operations: list[tuple[str, str, int]]
) -> None:
    repo = property_repo
    folder = repo / "memories"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    index = WorktreeIndex(find_repo(repo))
    shutil.rmtree(index.dir, ignore_errors=True)
    reference = WorktreeIndex(find_repo(repo))
    reference.dir = index.dir.parent / "reference-index"
    # Files get distinct mtimes well in the past: their stats are trusted, so unchanged files are reused
    # from the previous snapshot rather than read again (the path a refresh takes for old files).
    clock = time.time_ns() - 3600 * 1_000_000_000
    for operation, name, argument in [("refresh", "", 0), *operations, ("refresh", "", 0)]:
        path = folder / name
        clock += 1_000_000_000
        if operation == "write":
            write(path, CONTENTS[argument])
            os.utime(path, ns=(clock, clock))
        elif operation == "delete":
            path.unlink(missing_ok=True)
        elif operation == "rename" and path.exists():
            target = folder / NAMES[argument]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        elif operation == "refresh":
            refreshed = snapshot_content(index.fresh())
            rebuilt = snapshot_content(reference.refresh(rebuild=True))
            assert refreshed == rebuilt


def test_a_refresh_keeps_the_warnings_of_unchanged_files(repo: Path) -> None:
    path = write(repo / "memories" / "a.md", memory("not-a-ulid", "a memory with a warning"))
    past = time.time_ns() - 10 * RACY_NS  # not racy: the refresh reuses it without reading it again
    os.utime(path, ns=(past, past))
    index = WorktreeIndex(find_repo(repo))
    first = index.refresh(rebuild=True).problems()
    assert [p["code"] for p in first] == ["id"]
    write(repo / "memories" / "b.md", memory("01JDQ2V6R3J8Z6TT4M0S3W4K9B", "another"))
    assert index.refresh().problems() == first


# --- damaged files are never served ---------------------------------------------------------------------------


def garble(path: Path, zero: bool = False) -> None:
    """Change the last bytes of a file in place, keeping its size (as a bad disk or a stray write would)."""
    data = bytearray(path.read_bytes())
    span = min(len(data) // 2, 4096)
    data[-span:] = bytes(span) if zero else bytes(b ^ 0x5A for b in data[-span:])
    path.write_bytes(bytes(data))


@pytest.fixture
def indexed(repo: Path) -> Path:
    for n in range(12):
        write(repo / "memories" / f"m{n:02d}.md", memory(f"M{n:02d}", f"lesson {n} about topic{n}", f"word{n}"))
    assert run_cli(repo, "index").code == 0
    return repo


PARTS = [
    "attrs.npy",
    "post.tf.npy",
    "post.doc.npy",
    "post.ptr.npy",
    "docs.len.npy",
    "vectors.head.npy",
    "vectors.tail.npy",
    "vocab.npy",
    "docs.file.npy",
    "docs.id.npy",
    "records.jsonl",
    "records.off.npy",
    PATHS,
    "problems.json",
]


@pytest.mark.parametrize("part", PARTS)
def test_a_same_size_garbled_part_is_noticed_and_rebuilt(indexed: Path, part: str) -> None:
    repo = indexed
    before = live(repo).folder
    garble(live(repo).segments[0].folder / part, zero=part == "vocab.npy")
    result = run_cli(repo, "recall", "topic7", "-k", "1", "--json")
    assert result.code == 0, result.output
    assert json.loads(result.out)["results"][0]["id"] == "M07"
    assert result.err.count("\n") == 1 and f"{part} fails its checksum" in result.err
    assert live(repo).folder != before
    again = run_cli(repo, "recall", "topic7", "-k", "1", "--json")
    assert again.code == 0 and again.err == ""


def test_a_garbled_manifest_is_noticed(indexed: Path) -> None:
    manifest = live(indexed).folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"docs": 12', '"docs": 13'))
    result = run_cli(indexed, "recall", "topic3", "-k", "1", "--json")
    assert result.code == 0 and "manifest.json fails its checksum" in result.err
    assert json.loads(result.out)["results"][0]["id"] == "M03"


def test_plain_index_repairs_a_garbled_part(indexed: Path) -> None:
    before = live(indexed).folder
    garble(live(indexed).segments[0].folder / "vectors.head.npy")
    result = run_cli(indexed, "index")
    assert result.code == 0 and "vectors.head.npy fails its checksum" in result.err
    assert live(indexed).folder != before


def test_check_finds_damage_that_left_the_file_times_alone_and_repairs_it(indexed: Path) -> None:
    snapshot = live(indexed)
    segment = snapshot.segments[0]
    target = segment.folder / "post.tf.npy"
    garble(target)
    # Damage the stats do not show (bit rot): the manifest's record of the file's times is brought up to date.
    st = os.stat(target)
    manifest = dict(segment.manifest)
    manifest["parts"] = {**manifest["parts"]}
    manifest["parts"]["post.tf.npy"] = [*manifest["parts"]["post.tf.npy"][:2], st.st_mtime_ns, st.st_ctime_ns]
    (segment.folder / "manifest.json").write_bytes(manifest_bytes(manifest))
    assert live(indexed).folder == snapshot.folder  # a recall would not notice it
    result = run_cli(indexed, "index", "--check")
    assert result.code == 1, result.output
    assert "damaged: worktree snapshot" in result.out and "post.tf.npy fails its checksum" in result.out
    assert "repaired: rebuilt the working tree's snapshot" in result.out
    clean = run_cli(indexed, "index", "--check", "--json")
    assert clean.code == 0 and json.loads(clean.out)["damaged"] == []


def test_check_verifies_the_cache_rows_and_deletes_the_damaged_ones(indexed: Path) -> None:
    path = find_repo(indexed).state_dir / "cache.sqlite"
    cache = BlobCache(path)
    blob = cache.db.execute("SELECT blob FROM vectors LIMIT 1").fetchone()[0]
    cache.db.execute("UPDATE vectors SET vec = zeroblob(length(vec)) WHERE blob = ?", (blob,))
    model = cache.db.execute("SELECT model FROM vectors LIMIT 1").fetchone()[0]
    assert cache.vectors(model, [blob]) == {}  # a row that fails its checksum is a cache miss
    cache.close()
    result = run_cli(indexed, "index", "--check")
    assert result.code == 1 and "1 vectors fail their checksum" in result.out
    assert run_cli(indexed, "index", "--check").code == 0


@pytest.mark.parametrize("damage", ["garble", "truncate"])
def test_damaged_model_query_tables_are_made_again(indexed: Path, damage: str) -> None:
    tokens = next((find_repo(indexed).state_dir / "models").glob("*.tokens.npy"))
    expected = run_cli(indexed, "recall", "lesson about topic5", "--mode", "dense", "-k", "3", "--json")
    if damage == "garble":
        garble(tokens, zero=True)
    else:
        with open(tokens, "r+b") as handle:
            handle.truncate(os.path.getsize(tokens) // 2)
    result = run_cli(indexed, "recall", "lesson about topic5", "--mode", "dense", "-k", "3", "--json")
    assert result.code == 0, result.output
    assert json.loads(result.out)["results"] == json.loads(expected.out)["results"]
    assert run_cli(indexed, "index", "--check").code == 0  # made again by that recall


def test_check_reports_damaged_query_tables(indexed: Path) -> None:
    tokens = next((find_repo(indexed).state_dir / "models").glob("*.tokens.npy"))
    garble(tokens)
    result = run_cli(indexed, "index", "--check")
    assert result.code == 1 and "tokens.npy fails its checksum" in result.out


def test_a_damaged_cache_database_is_set_aside_once_and_old_copies_do_not_pile_up(indexed: Path) -> None:
    path = find_repo(indexed).state_dir / "cache.sqlite"
    for attempt in range(3):
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(b"this is not a database" * 100)
        write(indexed / "memories" / f"new{attempt}.md", memory(f"N{attempt}", f"new {attempt}"))
        assert run_cli(indexed, "index").code == 0
    assert len(list(path.parent.glob("cache.sqlite.corrupt-*"))) == 1


# --- read-only checkouts and full disks (real mounts; root only) ------------------------------------------------


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextlib.contextmanager
def mounted(*args: str, target: Path) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    try:
        mount(*args, str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount here ({exc}): needs root and mount permission")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@contextlib.contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("read-only bind mounts need root")
    with mounted("--bind", str(source), target=target):
        try:
            mount("-o", "remount,bind,ro", str(target))
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot remount read-only here ({exc.stderr.decode().strip()})")
        yield target


def leftovers(state: Path) -> list[str]:
    return sorted(
        str(p.relative_to(state))
        for p in state.rglob("*")
        if p.name.startswith((".tmp-", ".CURRENT.", ".manifest.")) or p.name.endswith(".tmp")
    )


def test_recall_in_a_read_only_checkout_answers_and_says_it_could_not_save(indexed: Path, tmp_path: Path) -> None:
    repo = indexed
    index = index_dir(repo)
    with read_only_view(repo, tmp_path / "ro") as ro_repo:
        fresh = run_cli(ro_repo, "recall", "topic4", "--mode", "bm25", "-k", "1", "--json")
        assert fresh.code == 0 and fresh.err == "", fresh.output
        write(repo / "memories" / "m04.md", memory("M04", "lesson 4 rewritten about topic4 and plums"))
        stale = run_cli(ro_repo, "recall", "plums", "--mode", "bm25", "-k", "1", "--json")
        assert stale.code == 0, stale.output
        assert json.loads(stale.out)["results"][0]["id"] == "M04"
        assert stale.err.count("\n") == 1 and "could not save the index" in stale.err
        assert "Read-only file system" in stale.err
        indexing = run_cli(ro_repo, "index")
        assert indexing.code == 1, indexing.output
        assert indexing.err.count("\n") == 1 and "could not save the index" in indexing.err
        shutil.rmtree(index)
        missing = run_cli(ro_repo, "recall", "topic9", "-k", "1", "--json")
        assert missing.code == 0, missing.output
        assert json.loads(missing.out)["results"][0]["id"] == "M09"
        assert "could not save the index" in missing.err
    assert leftovers(find_repo(repo).state_dir) == []


def test_settling_in_a_read_only_checkout_is_skipped(indexed: Path, tmp_path: Path, monkeypatch: Any) -> None:
    repo = indexed
    snapshot = live(repo)
    with read_only_view(repo, tmp_path / "ro") as view:
        ro_index = WorktreeIndex(find_repo(view))
        monkeypatch.setattr(time, "time_ns", lambda: snapshot.manifest["built_ns"] + 10 * RACY_NS)
        assert ro_index.settle(ro_index.current()).manifest["racy"] == snapshot.manifest["racy"]  # type: ignore[arg-type]


def fill(folder: Path) -> None:
    """Take every free byte of the file system holding ``folder``."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def test_a_full_disk_serves_recall_keeps_the_cache_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    with mounted("-t", "tmpfs", "-o", "size=24m", "tmpfs", target=tmp_path / "small") as disk:
        repo = disk / "repo"
        repo.mkdir()
        git(repo, "init", "-q")
        for n in range(6):
            write(repo / "memories" / f"m{n}.md", memory(f"M{n}", f"lesson {n} about topic{n}"))
        assert run_cli(repo, "recall", "topic1").code == 0
        state = find_repo(repo).state_dir
        cache = os.stat(state / "cache.sqlite").st_ino
        snapshot = live(repo)
        past = snapshot.manifest["built_ns"] - 10 * RACY_NS  # the racy window is over: recall would settle
        settled = {**snapshot.manifest.to_json(), "built_ns": past}
        (snapshot.folder / "manifest.json").write_bytes(manifest_bytes(settled))
        fill(disk)
        for _ in range(3):
            valid = run_cli(repo, "recall", "topic2", "--mode", "bm25", "-k", "1", "--json", "--min-confidence", "0")
            assert valid.code == 0 and valid.err == "", valid.output
            assert json.loads(valid.out)["results"][0]["id"] == "M2"
        (repo / "memories" / "m5.md").unlink()  # the index is stale; the space this frees is taken again
        fill(disk)
        stale = run_cli(repo, "recall", "topic4", "--mode", "bm25", "-k", "1", "--json", "--min-confidence", "0")
        assert stale.code == 0, stale.output
        assert stale.err.count("\n") == 1, stale.err
        assert "could not save the index" in stale.err and "No space left on device" in stale.err
        assert json.loads(stale.out)["results"][0]["id"] == "M4"
        assert leftovers(state) == []
        assert not list(state.glob("cache.sqlite.corrupt-*"))
        assert os.stat(state / "cache.sqlite").st_ino == cache
        (disk / "filler").unlink()
        assert run_cli(repo, "index").code == 0
        assert run_cli(repo, "index", "--check").code == 0


def test_a_snapshot_built_in_memory_equals_the_saved_one(indexed: Path, tmp_path: Path) -> None:
    saved = snapshot_content(live(indexed))
    with read_only_view(indexed, tmp_path / "ro") as view:
        shutil.rmtree(index_dir(indexed))
        in_memory = WorktreeIndex(find_repo(view)).fresh()
        assert not in_memory.saved
        assert snapshot_content(in_memory) == saved
