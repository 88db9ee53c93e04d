"""scripts/import_graph.py: the reasons it gives for function-local imports hold for the recall it describes."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import VALID, git, run_cli, write

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_graph.py"
# The modules whose function-local imports issue 14 asked to reduce to those with a reason.
REDUCED = (
    "mtlgit.citations mtlgit.dedup mtlgit.importers mtlgit.intake mtlgit.ledger mtlgit.ledger_git mtlgit.pools "
    "mtlgit.receipts mtlgit.store mtlgit.supersede"
).split()


@pytest.fixture(scope="module")
def graph_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loaded(cwd: Path, *args: str) -> set[str]:
    """The mtlgit modules a real `mtlgit recall` loads, from ``python -X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mtlgit", "recall", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(re.findall(r"^import time:.*\|\s*(mtlgit[\w.]*)$", proc.stderr, re.MULTILINE))


@pytest.mark.slow  # eleven real commands: ~9 s
def test_the_recall_path_named_is_what_recall_loads(repo: Path, tmp_path: Path, graph_script: ModuleType) -> None:
    own = repo / "memories" / "own.md"
    source = VALID[VALID.index("source:") : VALID.index("created:")]
    write(own, VALID.replace(source, ""))  # cites no code
    for old in (own, own.parent, repo / ".mtlgit.yaml"):  # older than any racy window: a settled index
        if old.exists():
            os.utime(old, (time.time() - 60, time.time() - 60))
    assert run_cli(repo, "index").code == 0
    outputs = [loaded(repo, "validate a fix", *how) for how in ((), ("--json",), ("-k", "2", "--paths"))]
    every = set.intersection(*outputs)
    assert every == graph_script.RECALL_ALWAYS, (
        f"update RECALL_ALWAYS in scripts/import_graph.py: now loaded {sorted(every - graph_script.RECALL_ALWAYS)},"
        f" no longer {sorted(graph_script.RECALL_ALWAYS - every)}"
    )

    write(own, VALID)  # now citing code: this recall refreshes the index and checks the code cited
    changed = loaded(repo, "validate a fix")

    work = tmp_path / "team"
    write(work / "memories" / "m.md", VALID.replace("01JDQ2V6R3J8Z6TT4M0S3W4K9B", "01M8RX8B3DAAAAAAAAAAAA0000"))
    git(work.parent, "init", "-q", str(work))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "a pool")
    assert run_cli(repo, "pool", "add", "team", str(work)).code == 0
    run_cli(repo, "recall", "validate a fix")  # the configuration changed: this recall refreshes the index
    some = (
        set.union(*outputs)
        | changed
        | loaded(repo, "validate a fix", "--json")
        | loaded(repo, "validate a fix", "-k", "2", "--paths")
    )
    assert some == graph_script.RECALL_ANY, (
        f"update RECALL_ANY in scripts/import_graph.py: now loaded {sorted(some - graph_script.RECALL_ANY)},"
        f" no longer {sorted(graph_script.RECALL_ANY - some)}"
    )


def test_every_function_local_import_left_in_the_reduced_modules_has_a_reason(graph_script: ModuleType) -> None:
    lines: dict[tuple[str, str], list[int]] = {}
    graph = graph_script.edges(lines)
    found = graph_script.local_reasons(graph, lines)
    movable = [(module, target) for module, target, reason in found if module in REDUCED and not reason]
    assert movable == [], "import these at the top of the module (python scripts/import_graph.py --local)"
    assert graph_script.cycles(graph, top_only=True) == []


def test_the_reasons_are_computed_from_the_graph(graph_script: ModuleType) -> None:
    graph = {
        "mtlgit.a": {"mtlgit.b": True, "mtlgit.c": False, "mtlgit.d": False, "mtlgit.e": False},
        "mtlgit.b": {},
        "mtlgit.c": {"mtlgit.a": True},
        "mtlgit.d": {"numpy": True},
        "mtlgit.e": {"subprocess": True},
        "numpy": {},
        "subprocess": {},
    }
    lines = {("mtlgit.a", "mtlgit.b"): [3], ("mtlgit.a", "mtlgit.c"): [4], ("mtlgit.a", "mtlgit.d"): [5]}
    lines[("mtlgit.a", "mtlgit.e")] = [6]
    reasons = {target: reason for _module, target, reason in graph_script.local_reasons(graph, lines)}
    assert reasons["mtlgit.b"] == ""  # already imported at the top
    assert reasons["mtlgit.c"] == "cycle: mtlgit.a <- mtlgit.c"
    assert reasons["mtlgit.d"].startswith("numpy: mtlgit.a loads without it")
    assert reasons["mtlgit.e"].startswith("subprocess: mtlgit.a loads without it")  # the git module's cost
