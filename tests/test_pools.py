"""Unified pools with real repositories as remotes: bare repos on local paths and file:// URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlgit.cache import BlobCache
from mtlgit.repo import find_repo
from tests.conftest import VALID, git, run_cli, write


def upstream(tmp_path: Path, name: str, memories: dict[str, str]) -> Path:
    """A team's repository with memories, published as a bare repository; returns the bare one."""
    work = tmp_path / f"{name}-work"
    work.mkdir()
    git(work, "init", "-q")
    for number, (title, content) in enumerate(memories.items()):
        text = VALID.replace("01JDQ2V6R3J8Z6TT4M0S3W4K9B", f"01JDQ2V6R3J8Z6TT4M0S3W{number:04d}")
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

    broken = run_cli(repo, "pool", "add", "broken", str(tmp_path / "missing.git"))
    assert broken.code == 0 and "sync failed" in broken.err
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
