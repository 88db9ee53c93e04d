"""Unified pools with real repositories as remotes: bare repos on local paths and file:// URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlgit.cache import BlobCache
from mtlgit.repo import find_repo
from tests.conftest import VALID, git, run_cli, write


def upstream(tmp_path: Path, name: str, memories: dict[str, str], branch: str = "main", prefix: str = "") -> Path:
    """A team's repository with memories on ``branch``, published as a bare repository; returns the bare one.
    ``prefix`` starts the ids, so that two pools can have ids of their own."""
    work = tmp_path / f"{name}-work"
    work.mkdir()
    git(work, "init", "-q", "-b", branch)
    for number, (title, content) in enumerate(memories.items()):
        text = VALID.replace("01JDQ2V6R3J8Z6TT4M0S3W4K9B", f"{prefix or '01JDQ2V6R3J8Z6TT4M0S3W'}{number:04d}")
        text = text.replace("Validate a fix with a self-contained here-doc test", title)
        text = text.split("---\nWrite")[0] + "---\n" + content + "\n"
        write(work / "memories" / f"m{number}.md", text)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "memories")
    bare = tmp_path / f"{name}.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def push_change(tmp_path: Path, name: str, edit: str) -> None:
    work = tmp_path / f"{name}-work"
    path = work / "memories" / "m0.md"
    path.write_text(path.read_text().replace("\n---\n", "\n---\n" + edit + " ", 1))
    git(work, "commit", "-qam", "edit")
    git(work, "push", "-q", str(tmp_path / f"{name}.git"), "HEAD:main")


def vectors(repo: Path) -> int:
    cache = BlobCache(find_repo(repo).state_dir / "cache.sqlite")
    try:
        return cache.count("vectors")
    finally:
        cache.close()


def results(repo: Path, *args: str) -> list[dict[str, object]]:
    result = run_cli(repo, "recall", *args, "--json")
    assert result.code == 0, result.output
    return json.loads(result.out)["results"]  # type: ignore[no-any-return]


@pytest.fixture
def teams(tmp_path: Path) -> tuple[Path, Path]:
    frontend = upstream(
        tmp_path,
        "frontend",
        {
            "Hide risky UI changes behind a feature flag": "Ship unfinished UI switched off; turn it on later.",
            "Test components through what the user sees": "Query by role and label, not by CSS class or test id.",
        },
    )
    database = upstream(
        tmp_path,
        "database",
        {
            "Index the columns used in joins": "Add an index on each foreign key that joins use, then check the plan.",
            "Run migrations in a transaction": "Wrap each schema migration in a transaction so a failure rolls back.",
        },
    )
    return frontend, database


def test_two_pools_sync_recall_update_remove_and_fail(repo: Path, tmp_path: Path, teams: tuple[Path, Path]) -> None:
    frontend, database = teams
    write(repo / "memories" / "own.md", VALID)
    added = run_cli(repo, "pool", "add", "frontend", str(frontend), "--domain", "frontend")
    assert added.code == 0 and "pool 'frontend': 2 memories" in added.out, added.output
    assert (
        run_cli(repo, "pool", "add", "database", f"file://{database}", "--domain", "sql", "--trust", "reviewed").code
        == 0
    )
    hits = results(repo, "slow join needs an index", "-k", "1")
    assert hits[0]["title"] == "Index the columns used in joins" and hits[0]["pool"] == "database"
    assert "sql" in hits[0]["domains"]  # type: ignore[operator]
    everything = results(repo, "lesson", "-k", "10")
    # Both pools use the same two ids: every memory is kept, told apart by its pool.
    assert len(everything) == 5 and len({h["id"] for h in everything}) == 3
    assert len({(h["id"], h["pool"]) for h in everything}) == 5
    assert {h["pool"] for h in results(repo, "ui flag", "-k", "10", "--local-only")} == {"local"}
    assert {h["pool"] for h in results(repo, "ui flag", "-k", "10", "--pool", "frontend")} == {"frontend"}
    assert "frontend" not in {h["pool"] for h in results(repo, "ui flag", "-k", "10", "--exclude-domain", "frontend")}
    prompt = run_cli(repo, "recall", "feature flag for risky ui", "--prompt", "-k", "1").out
    assert "from the untrusted pool 'frontend'" in prompt
    stats = json.loads(run_cli(repo, "stats", "--json").out)
    assert stats["pool"] == {"local": 1, "frontend": 2, "database": 2}
    assert stats["domain"]["sql"] == 2

    before = vectors(repo)
    push_change(tmp_path, "database", "Then run EXPLAIN.")
    synced = run_cli(repo, "pool", "sync", "database")
    assert synced.code == 0, synced.output
    assert vectors(repo) == before + 1  # only the changed memory was embedded
    assert "Then run EXPLAIN" in results(repo, "EXPLAIN the join plan", "-k", "1")[0]["content"]  # type: ignore[operator]

    assert run_cli(repo, "pool", "remove", "frontend").code == 0
    assert not (find_repo(repo).state_dir / "pools" / "frontend").exists()
    assert "frontend" not in (repo / ".mtlgit.yaml").read_text()
    assert "frontend" not in {h["pool"] for h in results(repo, "ui flag", "-k", "10")}

    broken = run_cli(repo, "pool", "add", "broken", str(tmp_path / "missing.git"), "--no-sync")
    assert broken.code == 0, broken.output
    again = run_cli(repo, "pool", "sync")
    assert again.code == 1 and "pool 'database': 2 memories" in again.out
    answer = run_cli(repo, "recall", "slow join", "--json")
    assert answer.code == 0 and json.loads(answer.out)["results"][0]["pool"] == "database"
    text = run_cli(repo, "recall", "slow join")
    assert text.err.count("pool 'broken' skipped") == 1


def test_sync_never_changes_the_pools_repository(repo: Path, teams: tuple[Path, Path]) -> None:
    frontend, _database = teams
    refs_before = git(frontend, "for-each-ref")
    files_before = sorted(str(p.relative_to(frontend)) for p in frontend.rglob("*"))
    assert run_cli(repo, "pool", "add", "frontend", str(frontend)).code == 0
    results(repo, "feature flag")
    assert git(frontend, "for-each-ref") == refs_before
    assert sorted(str(p.relative_to(frontend)) for p in frontend.rglob("*")) == files_before


@pytest.mark.parametrize(
    "url",
    ["--upload-pack=touch /tmp/mtlgit-pwned", "ext::sh -c touch% /tmp/mtlgit-pwned", "-oProxyCommand=touch x"],
)
def test_hostile_pool_urls_are_refused(repo: Path, url: str) -> None:
    result = run_cli(repo, "pool", "add", "evil", url)
    assert result.code in (1, 2)
    assert "Traceback" not in result.output
    assert not Path("/tmp/mtlgit-pwned").exists()
    assert "evil" not in (repo / ".mtlgit.yaml").read_text()


def test_a_hand_written_ext_url_in_the_config_is_refused_too(repo: Path) -> None:
    (repo / ".mtlgit.yaml").write_text("pools:\n  - name: evil\n    url: 'ext::sh -c touch% /tmp/mtlgit-pwned'\n")
    result = run_cli(repo, "pool", "sync")
    assert result.code == 1 and "ext:: are refused" in result.err
    assert not Path("/tmp/mtlgit-pwned").exists()


# --- issue 15: pools on master or trunk, a failed add, changing a pool, and pool hits that lead somewhere ------

MASTER = {"Pin the toolchain version": "Write the compiler version in the repository so every machine builds alike."}
TRUNK = {"Keep the trunk releasable": "Merge small changes behind flags so the main line can ship at any time."}


@pytest.mark.parametrize(("branch", "memories"), [("master", MASTER), ("trunk", TRUNK)])
def test_pool_add_reads_the_remotes_default_branch(
    repo: Path, tmp_path: Path, branch: str, memories: dict[str, str]
) -> None:
    remote = upstream(tmp_path, "team", memories, branch=branch)
    added = run_cli(repo, "pool", "add", "team", str(remote))
    assert added.code == 0 and "pool 'team': 1 memories" in added.out, added.output
    assert "    ref:" not in (repo / ".mtlgit.yaml").read_text()  # it follows the remote's default branch
    assert results(repo, "anything", "-k", "1")[0]["title"] == next(iter(memories))
    assert "@ HEAD/memories" in run_cli(repo, "pool", "list").out


def test_a_pool_that_cannot_be_fetched_is_not_added(repo: Path, tmp_path: Path) -> None:
    before = (repo / ".mtlgit.yaml").read_text()
    missing = run_cli(repo, "pool", "add", "broken", str(tmp_path / "missing.git"))
    assert missing.code == 1 and "Traceback" not in missing.output
    assert missing.err.startswith("Error: pool 'broken' not added: git fetch of") and "--no-sync" in missing.err
    assert missing.err.count("\n") == 1
    assert (repo / ".mtlgit.yaml").read_text() == before
    assert not (find_repo(repo).state_dir / "pools" / "broken").exists()
    remote = upstream(tmp_path, "team", MASTER, branch="master")
    wrong_ref = run_cli(repo, "pool", "add", "team", str(remote), "--ref", "main")
    assert wrong_ref.code == 1 and "(main) failed" in wrong_ref.err
    assert "team" not in (repo / ".mtlgit.yaml").read_text()


def test_pool_set_changes_the_ref_and_the_url_in_place(repo: Path, tmp_path: Path) -> None:
    remote = upstream(tmp_path, "team", MASTER, branch="master")
    work = tmp_path / "team-work"
    git(work, "checkout", "-q", "-b", "release")
    write(work / "memories" / "m0.md", (work / "memories" / "m0.md").read_text().replace("Pin the", "Pin the release"))
    git(work, "commit", "-qam", "release")
    git(work, "push", "-q", str(remote), "release")
    other = upstream(tmp_path, "other", TRUNK, branch="trunk", prefix="01JDQ2V6R3J8Z6TT4M0S3X")
    (repo / ".mtlgit.yaml").write_text((repo / ".mtlgit.yaml").read_text() + "# our pools\n")
    assert run_cli(repo, "pool", "add", "team", str(remote), "--domain", "build").code == 0

    to_release = run_cli(repo, "pool", "set", "team", "--ref", "release")
    assert to_release.code == 0 and "pool 'team': 1 memories" in to_release.out, to_release.output
    assert results(repo, "toolchain", "-k", "1")[0]["title"] == "Pin the release toolchain version"
    config = (repo / ".mtlgit.yaml").read_text()
    assert "    ref: release\n" in config and "# our pools" in config and "    domain: build\n" in config

    moved = run_cli(repo, "pool", "set", "team", "--url", str(other), "--ref", "")
    assert moved.code == 0, moved.output
    assert results(repo, "releasable trunk", "-k", "1")[0]["title"] == "Keep the trunk releasable"
    assert "    ref:" not in (repo / ".mtlgit.yaml").read_text()

    before = (repo / ".mtlgit.yaml").read_text()
    bad = run_cli(repo, "pool", "set", "team", "--ref", "no-such-branch")
    assert bad.code == 1 and "pool 'team' not changed" in bad.err and "no-such-branch" in bad.err
    assert (repo / ".mtlgit.yaml").read_text() == before
    assert results(repo, "releasable trunk", "-k", "1")[0]["pool"] == "team"  # the last good sync answers
    assert "last sync failed" not in run_cli(repo, "pool", "list").out
    assert run_cli(repo, "pool", "set", "nobody", "--ref", "x").code == 1
    assert run_cli(repo, "pool", "set", "team").code == 2


def test_a_pool_memory_can_be_shown_listed_and_opened(repo: Path, tmp_path: Path, teams: tuple[Path, Path]) -> None:
    frontend, _database = teams
    write(repo / "memories" / "own.md", VALID)
    assert run_cli(repo, "pool", "add", "frontend", str(frontend)).code == 0
    other = upstream(tmp_path, "ops", MASTER, branch="master", prefix="01M8RX8B3DAAAAAAAAAAAA")
    assert run_cli(repo, "pool", "add", "ops", str(other)).code == 0
    hit = results(repo, "pin the compiler version", "-k", "1")[0]
    assert hit["pool"] == "ops"

    shown = run_cli(repo, "show", str(hit["id"])[:10])
    assert shown.code == 0, shown.output
    assert shown.out.startswith("# pool 'ops': memories/m0.md at ") and "title: Pin the toolchain version" in shown.out
    as_json = json.loads(run_cli(repo, "show", str(hit["id"]), "--json").out)
    assert (as_json["pool"], as_json["title"]) == ("ops", "Pin the toolchain version")
    # The local memory and frontend's first one share an id: the local one answers, --pool picks the other.
    assert "# memories/own.md" in run_cli(repo, "show", "01JDQ2V6R3J8Z6TT4M0S3W4K9B").out
    shared = run_cli(repo, "show", "01JDQ2V6R3J8Z6TT4M0S3W0000", "--pool", "frontend")
    assert shared.code == 0 and "Hide risky UI changes behind a feature flag" in shared.out
    nowhere = run_cli(repo, "show", "01ZZZZ")
    assert nowhere.code == 1 and "no memory has the id or id prefix '01ZZZZ'" in nowhere.err

    paths = run_cli(repo, "recall", "pin the compiler version", "-k", "2", "--paths")
    assert paths.code == 0, paths.output
    first = paths.out.splitlines()[0]
    assert first == ".git/mtlgit/pools/ops/files/memories/m0.md"
    assert (repo / first).read_text() == git(other, "show", "HEAD:memories/m0.md")

    listed = run_cli(repo, "list")
    assert "(pool ops)" in listed.out and "(pool frontend)" in listed.out and len(listed.out.splitlines()) == 4
    assert run_cli(repo, "list", "--local-only").out.splitlines() == [
        line for line in listed.out.splitlines() if "(pool" not in line
    ]
    only = json.loads(run_cli(repo, "list", "--pool", "ops", "--json").out)
    assert [(m["pool"], m["title"]) for m in only] == [("ops", "Pin the toolchain version")]
    assert run_cli(repo, "list", "--pool", "nope").code == 1


def test_the_mcp_show_tool_finds_pool_memories(repo: Path, tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")
    import os
    import sys

    import anyio

    other = upstream(tmp_path, "ops", MASTER, branch="master", prefix="01M8RX8B3DAAAAAAAAAAAA")
    assert run_cli(repo, "pool", "add", "ops", str(other)).code == 0

    async def call() -> list[dict[str, object]]:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
        )
        out: list[dict[str, object]] = []
        async with Client(params, read_timeout_seconds=120) as client:
            # By id prefix, and by the path `recall --paths` prints for it (issue 14).
            for ref in ("01M8RX8B3D", ".git/mtlgit/pools/ops/files/memories/m0.md"):
                shown = await client.call_tool("show", {"id": ref})
                assert not shown.is_error, (ref, shown)
                out.append(dict(shown.structured_content or {}))
        return out

    for data in anyio.run(call):
        assert (data["pool"], data["title"], data["path"]) == ("ops", "Pin the toolchain version", "memories/m0.md")


# --- issue 14: show by the path recall --paths prints, and a pool's unreadable files named at sync -----------


def test_show_finds_a_pool_memory_by_the_path_recall_prints(repo: Path, tmp_path: Path) -> None:
    other = upstream(tmp_path, "ops", MASTER, branch="master", prefix="01M8RX8B3DAAAAAAAAAAAA")
    assert run_cli(repo, "pool", "add", "ops", str(other)).code == 0
    printed = run_cli(repo, "recall", "pin the compiler version", "-k", "1", "--paths")
    assert printed.out.splitlines() == [".git/mtlgit/pools/ops/files/memories/m0.md"], printed.output
    copy = printed.out.strip()
    sub = write(repo / "src" / "keep.txt", "")
    for ref, cwd in (
        (copy, repo),  # as printed, from the root
        (str((repo / copy).resolve()), sub.parent),  # absolute
        (f"../{copy}", sub.parent),  # relative to the current folder
        ("memories/m0.md", repo),  # the memory's path in the pool's own repository
        ("./memories/m0.md", sub.parent),
    ):
        shown = run_cli(cwd, "show", ref)
        assert shown.code == 0, (ref, shown.output)
        assert shown.out.startswith("# pool 'ops': memories/m0.md at "), (ref, shown.out)
    as_json = json.loads(run_cli(sub.parent, "show", f"../{copy}", "--json").out)
    assert (as_json["pool"], as_json["path"]) == ("ops", "memories/m0.md")
    # The repository's own memory at the same path answers first; --pool picks the pool's.
    write(repo / "memories" / "m0.md", VALID)
    assert run_cli(repo, "show", "memories/m0.md").out.startswith("# memories/m0.md")
    assert run_cli(repo, "show", "memories/m0.md", "--pool", "ops").out.startswith("# pool 'ops': memories/m0.md")
    assert run_cli(repo, "show", copy).out.startswith("# pool 'ops': memories/m0.md")
    missing = run_cli(repo, "show", ".git/mtlgit/pools/ops/files/memories/nothing.md")
    assert missing.code == 1 and "no memory has the id, id prefix or path" in missing.err, missing.output
    assert "Traceback" not in missing.err


def test_pool_sync_names_the_files_it_cannot_read(repo: Path, tmp_path: Path) -> None:
    remote = upstream(tmp_path, "ops", MASTER, branch="master", prefix="01M8RX8B3DAAAAAAAAAAAA")
    work = tmp_path / "ops-work"
    write(work / "memories" / "broken.md", "---\ntitle: [unclosed\n---\nno front matter that parses\n")
    write(work / "memories" / "bare.md", "just text, no front matter\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "two files mtlgit cannot read")
    git(work, "push", "-q", str(remote), "HEAD:master")

    added = run_cli(repo, "pool", "add", "ops", str(remote))
    assert added.code == 0 and "pool 'ops': 1 memories" in added.out, added.output
    synced = run_cli(repo, "pool", "sync")
    assert synced.code == 0 and "pool 'ops': 1 memories" in synced.out, synced.output
    for said in (added.err, synced.err):
        assert "pool 'ops': 2 file(s) could not be read and were left out" in said, said
        assert "memories/bare.md:" in said and "memories/broken.md:" in said
        assert "run `mtlgit lint` there" in said and "Traceback" not in said
    status = json.loads(run_cli(repo, "pool", "list", "--json").out)[0]["status"]
    assert status["unreadable"] == 2
    assert sorted(p["path"] for p in status["unreadable_files"]) == ["memories/bare.md", "memories/broken.md"]
    assert all(p["message"] and p["line"] >= 0 for p in status["unreadable_files"])
    assert results(repo, "pin the compiler version", "-k", "1")[0]["pool"] == "ops"  # the readable one answers


def test_pool_sync_json_gives_each_pools_status(repo: Path, tmp_path: Path) -> None:
    remote = upstream(tmp_path, "ops", MASTER, branch="master", prefix="01M8RX8B3DAAAAAAAAAAAA")
    work = tmp_path / "ops-work"
    write(work / "memories" / "bare.md", "just text, no front matter\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "a file mtlgit cannot read")
    git(work, "push", "-q", str(remote), "HEAD:master")
    assert run_cli(repo, "pool", "add", "ops", str(remote)).code == 0
    assert run_cli(repo, "pool", "add", "gone", str(tmp_path / "missing.git"), "--no-sync").code == 0

    synced = run_cli(repo, "pool", "sync", "--json")
    assert synced.code == 1 and "Traceback" not in synced.err, synced.output
    rows = json.loads(synced.out)  # stdout is the JSON alone: notes and failures go to stderr
    assert [(row["name"], row["trust"], row["status"]["ok"]) for row in rows] == [
        ("ops", "untrusted", True),
        ("gone", "untrusted", False),
    ]
    ops, gone = rows[0]["status"], rows[1]["status"]
    assert ops["memories"] == 1 and len(ops["commit"]) == 40 and "error" not in ops
    assert ops["unreadable"] == 1 and ops["unreadable_files"][0]["path"] == "memories/bare.md"
    assert gone["error"].startswith("git fetch of") and "memories" not in gone
    assert "pool 'gone': sync failed" in synced.err and "pool 'ops': 1 file(s) could not be read" in synced.err
    # The same objects pool list --json keeps, and the one pool named is the one synced.
    assert [row["status"] for row in json.loads(run_cli(repo, "pool", "list", "--json").out)] == [ops, gone]
    one = run_cli(repo, "pool", "sync", "ops", "--json")
    assert one.code == 0 and [row["name"] for row in json.loads(one.out)] == ["ops"], one.output


def test_a_pool_with_a_domain_label_has_its_own_vectors_of_a_file_the_repository_shares(
    repo: Path, tmp_path: Path
) -> None:
    """The label is part of the text a pool's memory is embedded from; the cache must not hand the pool the
    vector of the same file made for the repository's own index (or the other way round)."""
    from mtlgit.config import load_config
    from mtlgit.embed import load_model
    from mtlgit.memory import search_text
    from mtlgit.pools import parse_pools, pool_snapshot

    bare = upstream(tmp_path, "infra", {"Pin the base image by digest": "Tag names move; a digest never does."})
    shared = git(tmp_path / "infra-work", "show", "HEAD:memories/m0.md")
    write(repo / "memories" / "m0.md", shared)
    assert run_cli(repo, "index").code == 0  # the repository's vector of the file, unlabelled, is cached first
    assert run_cli(repo, "pool", "add", "infra", str(bare), "--domain", "containers").code == 0
    found = find_repo(repo)
    (spec,) = parse_pools(load_config(repo))
    snapshot = pool_snapshot(found, spec)
    assert snapshot is not None
    (record,) = snapshot.records([0])
    assert "containers" in record["domains"]
    model = load_model(load_config(repo).model, repo, found.state_dir)
    (_, stored), *_ = list(snapshot.vector_blocks())
    expected = model.encode([search_text(record)])[0]
    assert float(stored[0] @ expected) > 0.999, "the pool's vector is not that of its labelled text"
