"""The main job, end to end, on a throw-away repository: a pool, an index, recalls, a new memory."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mtlgit import git, render
from mtlgit.index import WorktreeIndex
from mtlgit.recall import recall
from mtlgit.resources import starter_dir
from mtlgit.store import Pool

TASKS = (
    "The reported bug still reproduces although my fix made the existing tests pass",
    "Write a shell script that generates a config file containing $HOME and backticks literally",
    "A pandas join suddenly returns more rows than either input table",
)


def run_demo(echo: Callable[[str], None], keep: Path | None = None) -> Path:
    """Run the demo, printing as it goes; returns the repository it used (deleted unless ``keep``)."""
    root = keep or Path(tempfile.mkdtemp(prefix="mtlgit-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        git.run(root, "init", "-q")
        (root / ".mtlgit.yaml").write_text("memories: memories\nmodel: default\n", encoding="utf-8")
        shutil.copytree(starter_dir(), root / "memories", dirs_exist_ok=True)
        pool = Pool.open(root)
        echo(f"1. A git repository at {root} with mtlgit's starter pool: {len(pool.memories)} memories")
        echo("   (Markdown files with YAML front matter under memories/, reviewed in pull requests like code)\n")

        started = time.perf_counter()
        WorktreeIndex(pool.repo).refresh()
        echo(
            f"2. Index built under .git/mtlgit/ in {time.perf_counter() - started:.2f} s "
            "(offline: the embedding model ships inside mtlgit)\n"
        )

        echo("3. Recall, top 3, hybrid BM25 + static embedding:")
        for task in TASKS:
            started = time.perf_counter()
            result = recall(task, start=root)
            elapsed = (time.perf_counter() - started) * 1000
            echo(f'\n   $ mtlgit recall "{task}"   ({elapsed:.0f} ms)')
            echo("   " + render.text(result.hits).replace("\n", "\n   "))

        echo("\n4. What an agent pastes into its prompt (mtlgit recall --prompt -k 1):\n")
        echo(render.prompt(recall(TASKS[1], k=1, start=root).hits))

        memory = pool.add(
            title="Re-run the exact reproduction command after every fix",
            description="When a fix is believed done.",
            content="Run the reporter's own steps again, unchanged; a passing unit test is not the bug report.",
            domains=["python"],
            tags=["verification"],
        )
        echo(f"\n5. A new memory, {memory.path}, is recalled at once (the index checks file stats):")
        result = recall("is my fix really done? run the reproduction again", start=root)
        echo("   " + render.text(result.hits).replace("\n", "\n   "))
        return root
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
