"""Hostile files and faults outside the index: crafted front matter, kill -9 mid-write, full and read-only disks.

Every CLI test runs the real command as a subprocess with a timeout, so a hang fails the test instead of
stalling the suite.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtlgit import frontmatter
from mtlgit.memory import parse_bytes
from mtlgit.repo import find_repo
from tests.conftest import VALID, Result, git, write

# Before the fix each of these ran for hours; a loaded two-core machine starts the CLI in a few seconds.
TIMEOUT = 60.0
GOOD_ID = "01JDQ2V6R3J8Z6TT4M0S3W4K9B"


def run(cwd: Path, *args: str, timeout: float = TIMEOUT, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "mtlgit", *args],
        cwd=cwd,
        input="",
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def alias_bomb() -> str:
    """A memory whose front matter stands for 9**9 values: nine lists, each of nine aliases of the one before."""
    names = "abcdefghi"
    keys = ["a: &a [" + ", ".join(["x"] * 9) + "]"]
    keys += [f"{name}: &{name} [" + ", ".join([f"*{before}"] * 9) + "]" for before, name in itertools.pairwise(names)]
    head, body = VALID.replace(GOOD_ID, "01JDQ2V6R3J8Z6TT4M0S3WB0MB").split("\n---\n", 1)
    return head + "\n" + "\n".join(keys) + "\n---\n" + body


BOMB_LINE = VALID.split("\n---\n")[0].count("\n") + 2  # the line of 'a: &a [...]'


# --- crafted front matter ----------------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_its_first_anchor() -> None:
    started = time.perf_counter()
    with pytest.raises(frontmatter.FrontMatterError, match=r"YAML anchor '&a'.*write the value out") as info:
        frontmatter.parse(alias_bomb())
    assert info.value.line == BOMB_LINE
    assert time.perf_counter() - started < 1
    memory, problems = parse_bytes(alias_bomb().encode(), "memories/bomb.md")
    assert memory is None
    assert str(problems[0]).startswith(f"memories/bomb.md:{BOMB_LINE}: error: front matter uses the YAML anchor")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\nid: X\ntitle: '*not an alias* & not an anchor'\nlist:\n  - a*b\n---\nbody\n", None),
        ("+++\na = " + "[" * 3000 + "]" * 3000 + "\n+++\nbody\n", "TOML front matter nests too deeply"),
        ("+++\na = " + "[" * 30 + "]" * 30 + "\n+++\nbody\n", "nests deeper than 20 levels"),
        ('{\n"a": "' + "x" * 70000 + '"\n}\nbody\n', "front matter is 68 KiB; the limit is 64 KiB"),
    ],
)
def test_crafted_front_matter_is_cheap_to_refuse(text: str, message: str | None) -> None:
    started = time.perf_counter()
    if message is None:
        assert frontmatter.parse(text).meta["title"] == "*not an alias* & not an anchor"
    else:
        with pytest.raises(frontmatter.FrontMatterError, match=message):
            frontmatter.parse(text)
    assert time.perf_counter() - started < 1


def test_a_value_written_twice_is_written_out_twice_not_as_an_alias() -> None:
    shared = {"task": "t1"}
    text = frontmatter.render({"id": "X", "title": "t", "attempts": [shared, shared]}, "body")
    assert "&" not in text and "*" not in text
    assert frontmatter.parse(text).meta["attempts"] == [shared, shared]


@pytest.fixture
def bombed(repo: Path) -> Path:
    """A repository with one good memory and one alias bomb, both committed."""
    write(repo / "memories" / "good.md", VALID)
    write(repo / "memories" / "bomb.md", alias_bomb())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "memories", "--no-verify")
    return repo


BOMB_ERROR = f"memories/bomb.md:{BOMB_LINE}: error: front matter uses the YAML anchor '&a'"


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("recall", "self-contained test"), 0, "Validate a fix with a self-contained here-doc test"),
        (("list",), 0, "Validate a fix"),
        (("show", GOOD_ID), 0, "Validate a fix"),
        (("index",), 0, ""),
        (("lint", "memories/good.md"), 0, "1 file(s) checked: 0 error(s)"),
        (("lint",), 1, BOMB_ERROR),
    ],
    ids=["recall", "list", "show", "index", "lint-other-file", "lint"],
)
def test_an_alias_bomb_stalls_no_command(bombed: Path, args: tuple[str, ...], code: int, expected: str) -> None:
    result = run(bombed, *args)
    assert result.code == code, result.output
    assert expected in result.output


def test_an_alias_bomb_blocks_the_commit_at_once(repo: Path) -> None:
    assert run(repo, "hooks", "install").code == 0
    write(repo / "memories" / "bomb.md", alias_bomb())
    git(repo, "add", "-A")
    commit = ["git", "commit", "-qm", "bomb"]
    blocked = subprocess.run(commit, cwd=repo, capture_output=True, text=True, timeout=TIMEOUT)
    assert blocked.returncode == 1
    assert BOMB_ERROR in blocked.stderr


def test_the_post_commit_refresh_finishes_past_an_alias_bomb(repo: Path) -> None:
    assert run(repo, "hooks", "install").code == 0
    write(repo / "memories" / "good.md", VALID)
    write(repo / "memories" / "bomb.md", alias_bomb())
    git(repo, "add", "-A")
    subprocess.run(["git", "commit", "-qm", "bomb", "--no-verify"], cwd=repo, check=True, timeout=TIMEOUT)
    log = find_repo(repo).state_dir / "hooks.log"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and "post-commit: index of 1 memories fresh" not in _read(log):
        time.sleep(0.2)
    assert "post-commit: index of 1 memories fresh" in _read(log)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_a_pool_with_an_alias_bomb_adds_and_syncs(repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "team"
    work.mkdir()
    git(work, "init", "-q")
    write(work / "memories" / "good.md", VALID)
    write(work / "memories" / "bomb.md", alias_bomb())
    git(work, "add", "-A")
    git(work, "commit", "-qm", "memories")
    added = run(repo, "pool", "add", "team", str(work))
    assert added.code == 0, added.output
    assert "pool 'team': 1 memories" in added.out
    synced = run(repo, "pool", "sync")
    assert synced.code == 0, synced.output
    assert "pool 'team': 1 memories" in synced.out


def test_deeply_nested_json_for_add_is_a_one_line_error(repo: Path, tmp_path: Path) -> None:
    deep = write(tmp_path / "deep.json", "[" * 200_000 + "]" * 200_000)
    result = run(repo, "add", "--items", str(deep))
    assert result.code == 1, result.output
    assert result.err.strip() == f"Error: {deep}: the JSON nests too deeply to be read; give a list of memory objects"


# --- crafted bodies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "x://y@ " + "a." * 100_000,  # every 'a' starts a URL scheme
        "-----BEGIN\n" + "token" * 40_000,  # every 'token' starts a secret-looking assignment
    ],
    ids=["url-scheme-run", "keyword-run"],
)
def test_the_secret_scan_is_linear_in_a_long_line(body: str) -> None:
    parse_bytes(VALID.encode(), "warm-up.md")  # loads detect-secrets outside the timing
    text = VALID.split("\n---\n")[0] + "\n---\n" + body + "\n"
    started = time.perf_counter()
    parse_bytes(text.encode(), "memories/long.md")
    assert time.perf_counter() - started < 10  # quadratic before: ~60 s and ~400 s here


# --- kill -9 in the middle of a write ----------------------------------------------------------------------

# The CLI with os.link replaced by a SIGKILL to itself: the process dies right after the temporary file of a new
# memory is written and synced, before it gets its name.
KILL_AT_LINK = (
    "import os, signal, sys\n"
    "os.link = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)\n"
    "from mtlgit.cli.entry import run\n"
    "sys.exit(run(sys.argv[1:]))\n"
)
ADD_ARGS = ("add", "-t", "Run the failing test first", "-d", "Before a fix.", "-c", "Write a failing test, then fix.")


def _temp_files(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*.tmp") if ".git" not in p.relative_to(repo).parts)


@pytest.mark.parametrize("command", ["add", "import"])
def test_a_write_killed_mid_way_leaves_nothing_to_commit(repo: Path, tmp_path: Path, command: str) -> None:
    source = write(tmp_path / "CLAUDE.md", "# Conventions\n- Run the linter before committing.\n")
    args = ADD_ARGS if command == "add" else ("import", str(source))
    killed = subprocess.run([sys.executable, "-c", KILL_AT_LINK, *args], cwd=repo, capture_output=True, timeout=TIMEOUT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    git(repo, "add", "-A")
    assert ".tmp" not in git(repo, "status", "--porcelain", "--untracked-files=all")
    assert _temp_files(repo) == []
    staging = find_repo(repo).state_dir / "tmp"
    assert len(list(staging.glob(".*.tmp"))) == 1  # the kill came after the temporary file was written
    # The next write removes what the dead process left.
    again = run(repo, "add", "-t", "Read the error to the end", "-d", "On a failure.", "-c", "Read it all.")
    assert again.code == 0, again.output
    assert list(staging.glob(".*.tmp")) == []


def test_temporary_files_of_dead_writers_in_the_memories_folder_are_removed(repo: Path) -> None:
    """What an older mtlgit (or the fallback across filesystems) left next to the memories goes too."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = write(repo / "memories" / "insight" / f".old-x.md.{dead.pid}.0123abcd.tmp", "half a memory")
    live = write(repo / "memories" / "insight" / f".other.md.{os.getpid()}.0123abcd.tmp", "being written")
    kept = write(repo / "memories" / "insight" / ".notes.tmp", "not ours")
    assert run(repo, *ADD_ARGS).code == 0
    assert not orphan.exists()
    assert live.exists() and kept.exists()


# --- kill -9 during pool sync ------------------------------------------------------------------------------

# The CLI killed at a chosen step of a sync: right after the old index folder is deleted, or right before
# status.json is replaced.
KILL_IN_SYNC = {
    "after-removing-the-old-index": (
        "import os, shutil, signal\n"
        "real = shutil.rmtree\n"
        "def rmtree(path, *args, **kwargs):\n"
        "    real(path, *args, **kwargs)\n"
        "    if os.path.basename(str(path)).startswith('index-'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "shutil.rmtree = rmtree\n"
    ),
    "before-the-status-is-replaced": (
        "import os, signal\n"
        "real = os.replace\n"
        "def replace(src, dst, *args, **kwargs):\n"
        "    if str(dst).endswith('status.json'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(src, dst, *args, **kwargs)\n"
        "os.replace = replace\n"
    ),
}


@pytest.mark.parametrize("step", sorted(KILL_IN_SYNC))
def test_a_sync_killed_at_any_step_leaves_the_pool_usable(repo: Path, tmp_path: Path, step: str) -> None:
    from tests.test_pools import push_change, upstream

    upstream(tmp_path, "team", {"Index the columns used in joins": "Add an index on each foreign key."})
    assert run(repo, "pool", "add", "team", str(tmp_path / "team.git")).code == 0
    push_change(tmp_path, "team", "Then run EXPLAIN.")
    script = KILL_IN_SYNC[step] + "import sys\nfrom mtlgit.cli.entry import run\nsys.exit(run(sys.argv[1:]))\n"
    killed = subprocess.run(
        [sys.executable, "-c", script, "pool", "sync"], cwd=repo, capture_output=True, timeout=TIMEOUT
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # What pool list says and what recall searches agree: the pool is synced, at the old or the new commit.
    listed = json.loads(run(repo, "pool", "list", "--json").out)[0]["status"]
    assert listed["snapshot"]
    answer = run(repo, "recall", "slow join needs an index", "--json")
    assert answer.code == 0, answer.output
    assert [r["pool"] for r in json.loads(answer.out)["results"]] == ["team"], answer.err
    assert "skipped" not in answer.err
    # The next sync finishes the job and leaves one index and no temporary file.
    assert run(repo, "pool", "sync").code == 0
    folder = find_repo(repo).state_dir / "pools" / "team"
    assert len(list(folder.glob("index-*"))) == 1
    assert list(folder.glob(".*.tmp")) == []
    assert "Then run EXPLAIN" in run(repo, "recall", "EXPLAIN the join", "--json").out


# --- a full disk and a read-only checkout ------------------------------------------------------------------


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _need_mount() -> None:
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a test file system needs root and mount(8)")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A repository on a tiny tmpfs with one memory, its index and a synced pool; then the disk is filled."""
    _need_mount()
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        from tests.test_pools import upstream

        upstream(tmp_path, "team", {"Index the columns used in joins": "Add an index on each foreign key."})
        repo = disk / "repo"
        repo.mkdir()
        git(repo, "init", "-q")
        assert run(repo, "init").code == 0
        assert run(repo, *ADD_ARGS).code == 0
        assert run(repo, "pool", "add", "team", str(tmp_path / "team.git")).code == 0
        with open(disk / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        yield repo
    finally:
        _unmount(disk)


@pytest.fixture
def read_only(repo: Path, tmp_path: Path) -> Iterator[Path]:
    """The test repository, with one memory and its index, seen through a read-only bind mount."""
    _need_mount()
    assert run(repo, *ADD_ARGS).code == 0
    view = tmp_path / "read-only"
    view.mkdir()
    if _mount("--bind", str(repo), str(view)).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        if _mount("-o", "remount,bind,ro", str(view)).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield view
    finally:
        _unmount(view)


def _assert_one_line_error(result: Result, reason: str, root: Path) -> None:
    assert result.code == 1, result.output
    lines = result.err.strip().split("\n")
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"Error: {root}") or f" {root}" in lines[0], result.err
    assert reason in lines[0], result.err
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_full_disk_gives_one_line_errors_and_leaves_no_temporary_file(full_disk: Path, tmp_path: Path) -> None:
    repo = full_disk
    state = find_repo(repo).state_dir
    source = write(tmp_path / "CLAUDE.md", "# Conventions\n- Run the linter before committing.\n")
    commands = [
        ("add", "-t", "Read the error to the end", "-d", "On a failure.", "-c", "Read it all."),
        ("import", str(source)),
        ("index", "--rebuild"),
        ("pool", "sync"),
    ]
    for command in commands:
        _assert_one_line_error(run(repo, *command), "no space left on device", repo)
    assert not (state / "crash.log").exists()
    assert [p.name for p in state.rglob("*.tmp")] == []
    assert _temp_files(repo) == []
    listed = run(repo, "list", "--json", "--local-only")
    assert listed.code == 0, listed.output
    assert len(json.loads(listed.out)) == 1, listed.output


@pytest.mark.slow
def test_a_read_only_checkout_gives_one_line_errors(read_only: Path) -> None:
    listed = json.loads(run(read_only, "list", "--json").out)
    assert [m["title"] for m in listed] == ["Run the failing test first"]
    commands = [
        ("add", "-t", "Read the error to the end", "-d", "On a failure.", "-c", "Read it all."),
        ("index", "--rebuild"),
        ("retire", listed[0]["id"]),
        ("pool", "add", "team", "../team.git"),
    ]
    for command in commands:
        _assert_one_line_error(run(read_only, *command), "read-only file system", read_only)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/r/a.md"), "/r/a.md: no space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "somewhere: disk quota exceeded"),
        (PermissionError(errno.EACCES, "Permission denied", "/r/.git"), "/r/.git: permission denied"),
        (sqlite3.OperationalError("database or disk is full"), "somewhere: no space left on device"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "somewhere: read-only file system"),
        (OSError(errno.ENOENT, "No such file or directory", "/r/a.md"), None),
        (sqlite3.OperationalError("no such table: blobs"), None),
    ],
)
def test_disk_faults_are_told_apart_from_bugs(error: Exception, expected: str | None) -> None:
    from mtlgit.errors import disk_fault

    fault = disk_fault(error, "somewhere")
    if expected is None:
        assert fault is None
    else:
        assert fault is not None and fault.startswith(expected)
    # The first failure of a write often hides behind a second one raised while closing the file.
    try:
        try:
            raise error
        except Exception:
            raise ValueError("while cleaning up") from None
    except ValueError as chained:
        chained.__context__ = error
        assert disk_fault(chained, "somewhere") == fault


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_among_the_memories_hangs_nothing(repo: Path) -> None:
    """A named pipe with a memory's name is no memory: index, lint, list and recall finish (a read of it waited
    for a writer for ever), and a pipe swapped in for a memory file after the scan is refused at once."""
    write(repo / "memories" / "insight" / "m.md", VALID)
    os.mkfifo(repo / "memories" / "insight" / "pipe.md")
    for args in (["index"], ["lint"], ["list"], ["recall", "a battery of tests"]):
        result = run(repo, *args)  # a hang fails the test at the timeout
        assert result.code in (0, 1), (args, result.output)
        assert "pipe.md" not in result.out or args == ["lint"]  # lint names it (the test below)
    assert "Validate a fix" in run(repo, "recall", "a battery of tests").out
    from mtlgit.rules import read_regular

    started = time.monotonic()
    with pytest.raises(OSError):
        read_regular(repo / "memories" / "insight" / "pipe.md")
    assert time.monotonic() - started < 5


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_lint_names_a_pipe_or_socket_with_a_memorys_name(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan leaves them out of the index and recall; lint names each one, what it is and the fix, without
    opening it (opening a pipe waits for a writer: the timeout fails the test)."""
    import socket

    folder = repo / "memories" / "insight"
    write(folder / "m.md", VALID)
    os.mkfifo(folder / "pipe.md")
    (folder / "link.md").symlink_to("pipe.md")
    monkeypatch.chdir(folder)  # a relative name: a socket's path is limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock.md")
    fix = "not a regular file, so no memory: replace it with a Markdown memory file or remove it [not-a-file]"
    result = run(repo, "lint")
    assert result.code == 1, result.output
    assert f"memories/insight/pipe.md: error: a named pipe, {fix}" in result.out
    assert f"memories/insight/link.md: error: a symlink to a named pipe, {fix}" in result.out
    assert f"memories/insight/sock.md: error: a socket, {fix}" in result.out
    assert "4 file(s) checked: 3 error(s)" in result.out
    named = run(repo, "lint", "memories/insight/pipe.md")
    assert named.code == 1 and f"memories/insight/pipe.md: error: a named pipe, {fix}" in named.out, named.output
    assert "1 file(s) checked: 1 error(s)" in named.out
    assert "Validate a fix" in run(repo, "recall", "a battery of tests").out
