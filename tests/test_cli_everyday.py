"""Everyday use of the CLI from a new user's seat: paths that open from where the user stands, the reviewed
branch of a clone, readers that go away, a repository where `mtlgit init` never ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, run_cli, write


def add(cwd: Path, title: str, *extra: str) -> dict[str, str]:
    result = run_cli(
        cwd,
        "add",
        "--title",
        title,
        "--description",
        f"When {title.lower()} matters in a build.",
        "--content",
        f"{title}: the whole lesson.",
        "--json",
        *extra,
    )
    assert result.code == 0, result.output
    return json.loads(result.out)  # type: ignore[no-any-return]


def _team(tmp_path: Path) -> Path:
    """Another project's repository, set up for mtlgit, with one committed memory: a pool to add."""
    team = tmp_path / "team"
    team.mkdir()
    git(team, "init", "-q")
    assert run_cli(team, "init", "--no-hooks").code == 0
    add(team, "Retry the flaky database migration")
    git(team, "add", "-A")
    git(team, "commit", "-qm", "memories")
    return team


# --- recall's paths open from the current directory -------------------------------------------------------


def test_recall_paths_from_a_subfolder_open_from_there(repo: Path, tmp_path: Path) -> None:
    memory = add(repo, "Pin the database driver version")
    team = _team(tmp_path)
    assert run_cli(repo, "pool", "add", "team", str(team)).code == 0
    here = repo / "src" / "deep"
    here.mkdir(parents=True)
    query = ["recall", "-k", "2", "database driver migration"]

    paths = run_cli(here, *query, "--paths")
    assert paths.code == 0, paths.output
    printed = paths.out.splitlines()
    assert len(printed) == 2 and os.path.join("..", "..", memory["path"]) in printed, printed
    for path in printed:
        assert not os.path.isabs(path) and (here / path).is_file(), path

    text = run_cli(here, *query)
    assert text.code == 0, text.output
    shown = [line.split("  (")[0].strip() for line in text.out.splitlines() if line.rstrip().endswith(")")]
    assert sorted(shown) == sorted(printed), text.out

    # JSON stays relative to the repository's root (of the pool's repository for a pool's memory).
    data = json.loads(run_cli(here, *query, "--json").out)
    by_pool = {hit["pool"]: hit["path"] for hit in data["results"]}
    assert by_pool["local"] == memory["path"] and by_pool["team"].startswith("memories/insight/"), by_pool

    # From the root, nothing changes: the paths are the repository's.
    assert os.path.join("..", "..", memory["path"]) not in run_cli(repo, *query, "--paths").out
    assert memory["path"] in run_cli(repo, *query, "--paths").out.splitlines()


def test_the_commands_print_paths_that_open_from_a_subfolder(repo: Path) -> None:
    here = repo / "docs"
    here.mkdir()
    added = run_cli(here, "add", "-t", "Keep the changelog current", "-d", "When a release is cut.", "-c", "Do it.")
    assert added.code == 0, added.output
    memory_id, path = added.out.split()[1:]
    assert path.startswith("../memories/") and (here / path).is_file(), added.out
    assert run_cli(here, "show", memory_id).out.splitlines()[0] == f"# {path}"
    assert run_cli(here, "edit", memory_id, env={"EDITOR": "true", "VISUAL": "true"}).out == f"No change to {path}\n"
    assert run_cli(here, "retire", memory_id).out == f"Retired {memory_id} ({path})\n"
    item = {"title": "Tag the release commit", "description": "When a release is cut.", "content": "Tag it."}
    items = run_cli(here, "add", "--items", "-", input=json.dumps([item, item]))
    assert items.code == 1, items.output  # the second is the first again
    added_path = items.out.splitlines()[0].split()[-1]
    assert added_path.startswith("../memories/") and (here / added_path).is_file(), items.out
    assert run_cli(here, "add", "--items", "-", "--force", input=json.dumps([item])).code == 0
    pairs = run_cli(here, "dedup")
    shown = [line.rsplit("(", 1)[1].rstrip(")") for line in pairs.out.splitlines() if line.endswith(".md)")]
    assert len(shown) == 2 and all((here / p).is_file() for p in shown), pairs.output
    write(repo / "memories" / "broken.md", "---\ntitle: no id\n---\nbody\n")
    lint = run_cli(here, "lint")
    assert lint.code == 1 and "../memories/broken.md:" in lint.out, lint.output
    data = json.loads(run_cli(here, "lint", "--json").out)
    assert "memories/broken.md" in {p["path"] for p in data["problems"]}, data


def test_pool_add_of_a_local_path_typed_in_a_subfolder(repo: Path, tmp_path: Path) -> None:
    team = _team(tmp_path)
    bare = tmp_path / "team.git"
    git(tmp_path, "clone", "-q", "--bare", str(team), str(bare))
    here = repo / "src" / "deep"
    here.mkdir(parents=True)
    added = run_cli(here, "pool", "add", "team", "../../../team.git")
    assert added.code == 0, added.output
    assert "url ../team.git (a local path, relative to the repository's root)" in added.out, added.out
    assert "    url: ../team.git\n" in (repo / ".mtlgit.yaml").read_text(encoding="utf-8")
    synced = run_cli(repo, "pool", "sync")
    assert synced.code == 0 and "pool 'team': 1 memories" in synced.out, synced.output


def test_recall_help_says_what_the_paths_are_relative_to(repo: Path) -> None:
    result = run_cli(repo, "recall", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "relative to the current directory" in text and "relative to the repository" in text, text


# --- the reviewed branch of a clone -----------------------------------------------------------------------


def _clone_of_a_master_remote(tmp_path: Path) -> Path:
    """A clone of a bare remote whose default branch is ``master``, with one memory on master."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "master", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(remote), str(seed))
    git(seed, "checkout", "-q", "-b", "master")
    assert run_cli(seed, "init", "--no-hooks").code == 0
    add(seed, "Warm the cache before timing a benchmark")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "reviewed memories")
    git(seed, "push", "-q", "origin", "master")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    assert git(clone, "symbolic-ref", "refs/remotes/origin/HEAD").strip() == "refs/remotes/origin/master"
    git(clone, "checkout", "-q", "-b", "feature")
    add(clone, "Invalidate the cache after a schema migration")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "a new memory")
    return clone


def test_review_in_a_clone_whose_default_branch_is_master(tmp_path: Path) -> None:
    clone = _clone_of_a_master_remote(tmp_path)
    result = run_cli(clone, "review")
    assert result.code == 0, result.output
    assert result.out.startswith("## mtlgit review: 1 added") and "Invalidate the cache" in result.out, result.out
    # `mtlgit init` leaves the setting to its default: a clone of the project elsewhere works the same.
    assert "\nreviewed_ref" not in (clone / ".mtlgit.yaml").read_text(encoding="utf-8")

    reviewed = run_cli(clone, "recall", "--reviewed", "--json", "--min-confidence", "0", "the cache")
    assert reviewed.code == 0, reviewed.output
    titles = [hit["title"] for hit in json.loads(reviewed.out)["results"]]
    assert titles == ["Warm the cache before timing a benchmark"], titles

    # Without origin/HEAD, the one default-looking branch of origin is the reviewed one.
    git(clone, "remote", "set-head", "origin", "--delete")
    again = run_cli(clone, "review")
    assert again.code == 0 and "Invalidate the cache" in again.out, again.output
    # Two of them, and nothing says which: the user is asked to choose.
    git(clone, "push", "-q", "origin", "master:main")
    git(clone, "fetch", "-q", "origin")
    ambiguous = run_cli(clone, "review")
    assert ambiguous.code == 1 and "reviewed_ref" in ambiguous.err, ambiguous.output
    # A branch named main/<something> makes refs/remotes/origin/main a folder, not a branch.
    git(clone, "push", "-q", "origin", ":main")
    git(clone, "push", "-q", "origin", "master:main/feature")
    git(clone, "fetch", "-q", "--prune", "origin")
    assert (clone / ".git" / "refs" / "remotes" / "origin" / "main").is_dir()
    folder = run_cli(clone, "review")
    assert folder.code == 0 and "Invalidate the cache" in folder.out, folder.output


def test_reviewed_ref_set_in_the_configuration_wins(tmp_path: Path) -> None:
    clone = _clone_of_a_master_remote(tmp_path)
    config = clone / ".mtlgit.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "reviewed_ref: feature\n", encoding="utf-8")
    result = run_cli(clone, "review")
    assert result.code == 0 and "no memory changes" in result.out, result.output


def test_no_reviewed_branch_is_an_error_naming_the_setting(repo: Path) -> None:
    add(repo, "A lesson on a repository without a remote")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    result = run_cli(repo, "review")
    assert result.code == 1 and "Traceback" not in result.err, result.output
    assert "reviewed_ref" in result.err and "`mtlgit review main..HEAD`" in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    reviewed = run_cli(repo, "recall", "--reviewed", "a lesson")
    assert reviewed.code == 1 and "reviewed_ref" in reviewed.err, reviewed.output


# --- a reader that goes away ------------------------------------------------------------------------------


def _into_a_closed_pipe(cwd: Path, *args: str) -> tuple[int, bytes]:
    """Run mtlgit with its standard output a pipe whose reader has already gone (`mtlgit ... | head -1`
    once head has exited): every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mtlgit", *args], cwd=cwd, stdout=write_end, stderr=subprocess.PIPE, timeout=120
        )
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["-C", ".", "--help"],
        ["list", "--help"],
        ["recall", "--help"],
    ],
    ids=lambda args: " ".join(args) or "no-arguments",
)
def test_help_into_a_closed_pipe_exits_0_quietly(tmp_path: Path, args: list[str]) -> None:
    code, err = _into_a_closed_pipe(tmp_path, *args)
    assert (code, err) == (0, b""), err.decode()


def test_a_long_list_into_a_closed_pipe_exits_0_quietly(repo: Path) -> None:
    for n in range(40):
        write(
            repo / "memories" / "insight" / f"m{n}.md",
            f"---\nid: 01JDQ2V6R3J8Z6TT4M0S3W4K{n:02d}\ntitle: Lesson {n} about the parser\n"
            f"description: When the parser fails on input {n}.\nformat: insight\n---\nBody {n}.\n",
        )
    for args in (["list"], ["list", "--json"], ["recall", "--min-confidence", "0", "-k", "40", "parser"]):
        code, err = _into_a_closed_pipe(repo, *args)
        assert (code, err) == (0, b""), (args, err.decode())


# --- a repository where `mtlgit init` never ran -----------------------------------------------------------


def _items(path: Path) -> Path:
    item = {"title": "Imported lesson", "description": "When importing lessons.", "content": "The lesson."}
    return write(path, json.dumps(item) + "\n")


def test_add_and_import_without_init_refuse_with_the_fix(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    items = _items(tmp_path / "items.jsonl")
    for args in (
        ["add", "-t", "A lesson", "-d", "When it applies.", "-c", "The lesson."],
        ["add", "--items", str(items)],
        ["import", str(items)],
        ["import", "--dry-run", str(items)],
        ["import", os.devnull],  # nothing to import there: the missing set-up is still what is said
    ):
        result = run_cli(project, *args)
        assert result.code == 1, (args, result.output)
        assert "mtlgit init" in result.err and "memories/" in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, result.err
        assert sorted(p.name for p in project.iterdir()) == [".git"], args

    assert run_cli(project, "init", "--no-hooks").code == 0
    assert run_cli(project, "import", str(items)).code == 0
    assert len(list((project / "memories").rglob("*.md"))) == 1


def test_lint_without_init_passes_and_says_mtlgit_is_not_set_up(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    result = run_cli(tmp_path, "lint")
    assert result.code == 0 and result.out == "0 file(s) checked: 0 error(s), 0 warning(s)\n", result.output
    assert "mtlgit is not set up" in result.err and "`mtlgit init`" in result.err, result.err


def test_add_in_a_fresh_clone_creates_the_configured_folder(tmp_path: Path) -> None:
    """git keeps no empty folder: a clone of a project that ran `mtlgit init` has .mtlgit.yaml and no
    memories/ until the first memory, and adding it is what the configuration asks for."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    assert run_cli(project, "init", "--no-hooks").code == 0
    git(project, "add", "-A")
    git(project, "commit", "-qm", "mtlgit")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    assert not (clone / "memories").exists()
    memory = add(clone, "A lesson in a clone")
    assert (clone / memory["path"]).is_file()


def test_mcp_add_memories_without_init_refuses_with_the_fix(tmp_path: Path) -> None:
    pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'mtlgit[mcp]')")
    import anyio

    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")

    async def call() -> str:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters

        params = StdioServerParameters(
            command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(project), env=dict(os.environ)
        )
        async with Client(params, read_timeout_seconds=120) as client:
            item = {"title": "A lesson", "description": "When it applies.", "content": "The lesson."}
            result = await client.call_tool("add_memories", {"items": [item]})
            assert result.is_error
            return " ".join(getattr(part, "text", "") for part in result.content)

    text = anyio.run(call)
    assert "mtlgit init" in text and "memories/" in text, text
    assert sorted(p.name for p in project.iterdir()) == [".git"]
