"""Whole-process latency, build time and memory of ``mtlgit recall`` and ``mtlgit index`` on pools of N memories.

What is measured, for each pool size (a fresh pool from ``pools.py`` in a temporary folder):

- the baseline ``python -c 'import numpy'`` with the same interpreter, run interleaved with the recall runs in
  the same loop (the machine is shared and noisy: every figure is a median, and recall is also given as a
  ratio to this baseline);
- the first index build from nothing (``.git/mtlgit`` deleted: no snapshot, no vector cache) and full rebuilds
  (``mtlgit index --rebuild``: the vector cache is kept), as whole processes;
- ``mtlgit recall "<query>"`` on a fresh index, p50 and p90, over a rotating set of agent task queries, and
  ``--mode bm25`` / ``--mode dense`` p50; ``mtlgit index`` when nothing changed (the refresh a git hook runs;
  the installed hooks run it detached, so this is its own cost, not the git command's: ``bench_hooks.py``
  times the hooks);
- refresh costs: append a sentence to one memory, then time the next ``mtlgit recall`` (or ``mtlgit index``),
  a different file each time; add a new memory file, then time the next ``mtlgit recall``;
- the peak memory (max RSS) of recall, the numpy baseline and builds, from extra runs under
  ``/usr/bin/time -f %M`` (it adds ~10 ms, so timed runs go without it; ``os.wait4`` when it is missing);
- a phase breakdown of one recall, in a child process that calls the library step by step (imports,
  snapshot, freshness check, model, query embedding, scoring, output), next to the whole-process time of
  ``python -c pass``.

Every timed command is a whole process started from the venv's ``mtlgit`` console script (found next to
``sys.executable``), as users run it, with output captured to a file. The mtlgit package is byte-compiled
first (``python -m compileall -q``): this environment sets PYTHONDONTWRITEBYTECODE=1, so without it every
process would compile mtlgit's modules again.

Run it (the 100k pool takes several minutes)::

    .venv/bin/python benchmarks/bench_recall.py                      # 1k, 10k and 100k, 15 runs each
    .venv/bin/python benchmarks/bench_recall.py --sizes 10000 --runs 25 --json /tmp/recall.json
    .venv/bin/python benchmarks/bench_recall.py --sizes 10000 --profile   # + -X importtime and cProfile
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pools

PYTHON = sys.executable
BIN = Path(sys.executable).parent  # not resolved: a venv's python is a symlink to the base interpreter
MTLGIT = str(BIN / "mtlgit")
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else ""
QUERIES = pools.AGENT_QUERIES
RACY_WAIT = 3.5  # mtlgit hashes files changed < 3 s before a build on every recall: start builds after that

# (what, size, key in the figures, target, unit) of DESIGN.md section 7.
TARGETS: tuple[tuple[str, int, str, float, str], ...] = (
    ("recall p50, fresh index / numpy import", 10_000, "recall_ratio", 1.5, "x"),
    ("recall p50, fresh index / numpy import", 100_000, "recall_ratio", 2.5, "x"),
    ("hook refresh, none changed (mtlgit index)", 10_000, "index_nochange_p50", 0.100, "s"),
    ("hook refresh, one changed (mtlgit index)", 10_000, "index_after_change_p50", 0.500, "s"),
    ("full build from nothing", 10_000, "first_build", 5.0, "s"),
    ("full build, --rebuild (vectors cached)", 10_000, "rebuild_p50", 5.0, "s"),
    ("full build from nothing", 100_000, "first_build", 60.0, "s"),
    ("full build, --rebuild (vectors cached)", 100_000, "rebuild_p50", 60.0, "s"),
    ("peak memory of recall", 100_000, "recall_maxrss_mb", 400.0, "MB"),
)

PHASES_SCRIPT = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name):
    marks.append((name, time.perf_counter()))
import numpy
mark("import numpy")
import click
mark("import click")
import mtlgit.cli.main, mtlgit.cli.recall, mtlgit.recall, mtlgit.index, mtlgit.repo
mark("import mtlgit.cli + recall/index/repo")
import Stemmer, mtlgit.embed, mtlgit.render, mtlgit.wordpiece, mtlgit.analysis
mark("import Stemmer, embed, wordpiece, render (lazy)")
from mtlgit import render
from mtlgit.analysis import analyze
from mtlgit.embed import load_model
from mtlgit.index import WorktreeIndex, is_fresh
from mtlgit.recall import Filters, Hit, bm25_scores, candidate_mask, dense_scores, fuse
from mtlgit.repo import find_repo
query = sys.argv[1]
repo = find_repo()
index = WorktreeIndex(repo)
snap = index.current()
mark("find repo, open snapshot (manifest)")
fresh = is_fresh(snap, repo.root)
mark("freshness check (stat every file)")
model = load_model(snap.manifest["model"], repo.root, repo.state_dir)
model.key
mark("model: map safetensors, model key")
model._wordpiece
mark("query tokenizer: read tokenizer.json")
vector = model.encode_query(query)
mark("embed the query")
rows = numpy.flatnonzero(candidate_mask(snap, Filters()))
mark("filters (status/format mask)")
terms = analyze(query)
mark("analyze the query (stemmer)")
bm25 = bm25_scores(snap, terms)[rows]
mark("bm25 scores")
dense = dense_scores(snap, vector)[rows]
mark("dense scores (float16 -> float32 matmul)")
score = fuse(bm25, dense, "hybrid")
best = numpy.argpartition(-score, 2)[:3]
best = best[numpy.lexsort((rows[best], -score[best]))]
chosen = [int(rows[i]) for i in best]
records = snap.records(chosen)
paths = snap.doc_paths(chosen)
hits = [Hit(n + 1, float(score[i]), float(bm25[i]), float(dense[i]), p, r)
        for n, (i, r, p) in enumerate(zip(best, records, paths))]
mark("fuse, top 3, read records")
sys.stdout.write(render.text(hits) + "\n")
sys.stdout.flush()
mark("render and print")
phases = {name: marks[i + 1][1] - marks[i][1] for i, (name, _) in enumerate(marks[1:])}
sys.stderr.write(json.dumps({"fresh": fresh, "docs": snap.n_docs, "phases": phases}) + "\n")
"""


@dataclass
class Run:
    """One finished child process."""

    seconds: float
    maxrss_kb: int | None
    code: int
    out: str
    err: str


def run(argv: Sequence[str], cwd: Path, check: bool = True, rss: bool = False) -> Run:
    """Run ``argv`` to completion: wall time, output and, with ``rss``, its peak memory.

    The peak comes from ``/usr/bin/time -f %M`` (which adds ~10 ms, so timed runs go without it). Without
    that program it is ``os.wait4``'s ``ru_maxrss``, which Linux never reports below the RSS of the process
    that forked the child (this one), so it only bounds small processes from above.
    """
    argv = list(argv)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as peak:
        wrapped = [TIME, "-f", "%M", "-o", peak.name, *argv] if rss and TIME else argv
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        maxrss: int | None = None
        if rss:
            text = Path(peak.name).read_text().strip().splitlines() if TIME else []
            maxrss = int(text[-1]) if text and text[-1].isdigit() else int(usage.ru_maxrss)
        result = Run(seconds, maxrss, proc.returncode, out.read().decode(), err.read().decode())
    if check and result.code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.code}: {result.err.strip()[-2000:]}")
    return result


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


@dataclass
class SizeResult:
    size: int
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[str, int, float, float | None, float | None, float | None]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        label: str,
        key: str,
        runs: Sequence[Run],
        baseline: float | None = None,
        with_p90: bool = False,
        rss_runs: Sequence[Run] = (),
    ) -> None:
        """A table row: median (and p90) of ``runs``, ratio to ``baseline``, peak RSS over ``rss_runs``."""
        seconds = [r.seconds for r in runs]
        mid = p50(seconds)
        ninety = p90(seconds) if with_p90 else None
        ratio = mid / baseline if baseline else None
        peaks = [r.maxrss_kb for r in (*runs, *rss_runs) if r.maxrss_kb is not None]
        rss = max(peaks) / 1024 if peaks else None
        self.rows.append((label, len(runs), mid, ninety, ratio, rss))
        self.figures[f"{key}_p50"] = mid
        if ninety is not None:
            self.figures[f"{key}_p90"] = ninety
        if ratio is not None:
            self.figures[f"{key}_ratio"] = ratio
        if rss is not None:
            self.figures[f"{key}_maxrss_mb"] = rss
        self.figures[f"{key}_runs"] = seconds

    def table(self) -> str:
        lines = [f"{'measure':<58} {'runs':>4} {'p50':>9} {'p90':>9} {'/numpy':>7} {'max RSS':>9}"]
        for label, count, mid, ninety, ratio, rss in self.rows:
            lines.append(
                f"{label:<58} {count:>4} {_fmt_s(mid):>9} {_fmt_s(ninety):>9} "
                f"{f'{ratio:.2f}x' if ratio is not None else '':>7} {f'{rss:.0f} MB' if rss else '':>9}"
            )
        return "\n".join(lines)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def memory_files(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, dirs, files in os.walk(root / "memories"):
        dirs.sort()
        out.extend(Path(folder) / name for name in sorted(files) if name.endswith(".md"))
    return out


def append_sentence(path: Path, number: int) -> None:
    """Change one memory the way an edit would: one more sentence at the end of its body."""
    data = path.read_bytes().rstrip(b"\n")
    path.write_bytes(data + f" Checked again in benchmark edit {number}.\n".encode())


def snapshot_manifest(root: Path) -> dict[str, Any]:
    index = root / ".git" / "mtlgit" / "index"
    name = (index / "CURRENT").read_text(encoding="utf-8").strip()
    return json.loads((index / name / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _query(number: int) -> str:
    return QUERIES[number % len(QUERIES)]


def wait_out_racy(since: float) -> None:
    """Sleep until files last written at ``since`` (perf_counter) are older than mtlgit's racy window."""
    left = RACY_WAIT - (time.perf_counter() - since)
    if left > 0:
        time.sleep(left)


def bench_size(size: int, runs: int, workdir: Path, layout: str, seed: int, keep: bool) -> SizeResult:
    result = SizeResult(size)
    load_start = os.getloadavg()
    root = workdir / f"pool-{size}"
    info = pools.build_pool(root, size, seed=seed, layout=layout, force=True)
    written = time.perf_counter()
    result.notes.append(info.summary())
    result.figures["pool_write_seconds"] = info.seconds_write
    files = memory_files(root)

    # Builds: from nothing, then full rebuilds (the vector cache in .git/mtlgit is kept by --rebuild).
    wait_out_racy(written)
    shutil.rmtree(root / ".git" / "mtlgit", ignore_errors=True)
    cold = [run([MTLGIT, "index"], root, rss=True)]
    result.add("first build from nothing: mtlgit index (no .git/mtlgit)", "first_build", cold)
    result.figures["first_build"] = cold[0].seconds
    result.notes.append(f"first build said: {cold[0].out.strip()}")
    rebuilds = [run([MTLGIT, "index", "--rebuild"], root, rss=True) for _ in range(3)]
    result.add("full rebuild: mtlgit index --rebuild (vectors cached)", "rebuild", rebuilds)
    manifest = snapshot_manifest(root)
    result.notes.append(
        f"snapshot: {manifest['docs']} memories, {manifest['files']} files, {len(manifest['dirs'])} folders, "
        f"{len(manifest.get('racy') or [])} racy files, {manifest.get('problem_files', 0)} unreadable"
    )

    # Fresh index: baseline and recall interleaved, one round per run.
    run([PYTHON, "-c", "import numpy"], root)
    warm = run([MTLGIT, "recall", _query(0)], root)
    result.notes.append("sample output: " + " | ".join(warm.out.strip().splitlines()[:1]))
    numpy_runs: list[Run] = []
    bare_runs: list[Run] = []
    recall_runs: list[Run] = []
    bm25_runs: list[Run] = []
    dense_runs: list[Run] = []
    nochange_runs: list[Run] = []
    for i in range(runs):
        query = _query(i % len(QUERIES))
        numpy_runs.append(run([PYTHON, "-c", "import numpy"], root))
        recall_runs.append(run([MTLGIT, "recall", query], root))
        bm25_runs.append(run([MTLGIT, "recall", "--mode", "bm25", query], root))
        dense_runs.append(run([MTLGIT, "recall", "--mode", "dense", query], root))
        nochange_runs.append(run([MTLGIT, "index"], root))
        bare_runs.append(run([PYTHON, "-c", "pass"], root))
    # Peak memory: separate runs under /usr/bin/time (it adds ~10 ms, so the timed runs above go without it).
    peak = {
        name: [run(argv, root, rss=True) for _ in range(3 if name == "recall" else 1)]
        for name, argv in (
            ("numpy", [PYTHON, "-c", "import numpy"]),
            ("bare", [PYTHON, "-c", "pass"]),
            ("recall", [MTLGIT, "recall", _query(1)]),
            ("bm25", [MTLGIT, "recall", "--mode", "bm25", _query(2)]),
            ("dense", [MTLGIT, "recall", "--mode", "dense", _query(3)]),
            ("index", [MTLGIT, "index"]),
        )
    }
    baseline = p50([r.seconds for r in numpy_runs])
    result.figures["numpy_p50"] = baseline
    result.add("baseline: python -c 'import numpy'", "numpy", numpy_runs, baseline, True, peak["numpy"])
    result.add("python -c pass (interpreter start)", "bare", bare_runs, baseline, rss_runs=peak["bare"])
    result.add("mtlgit recall QUERY (hybrid), fresh index", "recall", recall_runs, baseline, True, peak["recall"])
    result.add("mtlgit recall --mode bm25, fresh index", "recall_bm25", bm25_runs, baseline, rss_runs=peak["bm25"])
    result.add("mtlgit recall --mode dense, fresh index", "recall_dense", dense_runs, baseline, rss_runs=peak["dense"])
    result.add(
        "mtlgit index, nothing changed (hook refresh)",
        "index_nochange",
        nochange_runs,
        baseline,
        rss_runs=peak["index"],
    )

    # One memory changed: the next recall refreshes the index first; and the same through `mtlgit index`.
    step = max(1, len(files) // 16)
    changed_recall: list[Run] = []
    changed_index: list[Run] = []
    added_recall: list[Run] = []
    around: list[Run] = []
    for j in range(5):
        around.append(run([PYTHON, "-c", "import numpy"], root))
        append_sentence(files[(2 * j + 1) * step % len(files)], j)
        changed_recall.append(run([MTLGIT, "recall", _query((j + 3) % len(QUERIES))], root))
        append_sentence(files[(2 * j + 2) * step % len(files)], 100 + j)
        changed_index.append(run([MTLGIT, "index"], root))
        pools.new_memory_file(root, 1000 + j, layout)
        added_recall.append(run([MTLGIT, "recall", _query((j + 7) % len(QUERIES))], root))
    # One more of each under /usr/bin/time, for their peak memory.
    append_sentence(files[3 * step % len(files)], 200)
    peak_changed = [run([MTLGIT, "recall", _query(5)], root, rss=True)]
    append_sentence(files[5 * step % len(files)], 201)
    peak_index = [run([MTLGIT, "index"], root, rss=True)]
    pools.new_memory_file(root, 1100, layout)
    peak_added = [run([MTLGIT, "recall", _query(6)], root, rss=True)]
    around_p50 = p50([r.seconds for r in around])
    result.figures["numpy_around_changes_p50"] = around_p50
    result.add(
        "mtlgit recall after one memory changed (refresh)",
        "recall_after_change",
        changed_recall,
        around_p50,
        rss_runs=peak_changed,
    )
    result.add(
        "mtlgit index after one memory changed (hook refresh)",
        "index_after_change",
        changed_index,
        around_p50,
        rss_runs=peak_index,
    )
    result.add(
        "mtlgit recall after a new memory file was added",
        "recall_after_add",
        added_recall,
        around_p50,
        rss_runs=peak_added,
    )

    # Where one recall spends its time (library calls in a child process), median of 5.
    phase_runs: list[dict[str, float]] = []
    for i in range(5):
        child = run([PYTHON, "-c", PHASES_SCRIPT, _query(i % len(QUERIES))], root, check=False)
        if child.code != 0:
            result.notes.append(f"phase breakdown failed (mtlgit internals changed?): {child.err.strip()[-300:]}")
            break
        data = json.loads(child.err.strip().splitlines()[-1])
        phase_runs.append({**data["phases"], "(whole child process)": child.seconds})
    if phase_runs:
        result.phases = {name: p50([r[name] for r in phase_runs]) for name in phase_runs[0]}
        result.figures["phases"] = result.phases
    result.figures["loadavg"] = [load_start, os.getloadavg()]
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        result.notes.append(f"pool kept at {root}")
    return result


def profile_recall(root: Path, query: str, files: Sequence[Path]) -> str:
    """``-X importtime`` and cProfile of one recall on a fresh index, and cProfile of ``mtlgit index`` after
    one memory changed."""
    lines: list[str] = []
    child = run([PYTHON, "-X", "importtime", MTLGIT, "recall", query], root)
    packages: list[tuple[int, str]] = []
    top_level = 0
    mtlgit_self = 0
    for line in child.err.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if not match:
            continue
        self_us, cumulative, indent, name = int(match.group(1)), int(match.group(2)), match.group(3), match.group(4)
        if not indent:
            top_level += cumulative
        if "." not in name:  # a package or top-level module, wherever it was first imported from
            packages.append((cumulative, name))
        if name.startswith("mtlgit"):
            mtlgit_self += self_us
    lines.append(f"-X importtime, one recall ({child.seconds * 1000:.0f} ms whole process under -X importtime):")
    lines.append(
        f"  all imports: {top_level / 1000:.1f} ms; mtlgit's own modules (self time): {mtlgit_self / 1000:.1f} ms"
    )
    lines.append("  largest packages/modules by cumulative import time:")
    for micros, name in sorted(packages, reverse=True)[:15]:
        lines.append(f"  {micros / 1000:8.1f} ms  {name}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "recall.prof"
        run([PYTHON, "-m", "cProfile", "-o", str(out), MTLGIT, "recall", query], root)
        lines.append("cProfile, one recall on a fresh index (cumulative, top 30; then own time, top 15):")
        lines.extend(_pstats(out, "cumulative", 30))
        lines.extend(_pstats(out, "tottime", 15))
        append_sentence(files[len(files) // 2], 999)
        run([PYTHON, "-m", "cProfile", "-o", str(out), MTLGIT, "index"], root)
        lines.append("cProfile, mtlgit index after one memory changed (cumulative, top 30; then own time, top 15):")
        lines.extend(_pstats(out, "cumulative", 30))
        lines.extend(_pstats(out, "tottime", 15))
    return "\n".join(lines)


def _pstats(path: Path, key: str, count: int) -> list[str]:
    stream = io.StringIO()
    pstats.Stats(str(path), stream=stream).strip_dirs().sort_stats(key).print_stats(count)
    text = stream.getvalue().splitlines()
    start = next((i for i, line in enumerate(text) if "ncalls" in line), 0)
    header = [line for line in text[:start] if "function calls" in line]
    return ["  " + line.strip() for line in header] + ["  " + line for line in text[start:] if line.strip()]


def print_size(result: SizeResult) -> None:
    print()
    print(f"== {result.size:,} memories ==")
    for note in result.notes:
        print(f"  {note}")
    load = result.figures.get("loadavg")
    if load:
        print(
            f"  load average (1/5/15 min): start {load[0][0]:.2f} {load[0][1]:.2f} {load[0][2]:.2f}, "
            f"end {load[1][0]:.2f} {load[1][1]:.2f} {load[1][2]:.2f} on {os.cpu_count()} CPUs"
        )
    print(result.table())
    source = (
        "separate runs under /usr/bin/time -f %M" if TIME else "os.wait4 ru_maxrss (never below this process's RSS)"
    )
    print(f"  (p50/p90: wall time of whole processes; /numpy: p50 over the baseline's p50; max RSS: {source})")
    if result.phases:
        whole = result.phases.get("(whole child process)", 0.0)
        accounted = sum(v for k, v in result.phases.items() if not k.startswith("("))
        print("  phases of one recall (library calls in a child process, median of 5; ms):")
        for name, seconds in result.phases.items():
            if not name.startswith("("):
                print(f"    {seconds * 1000:8.1f}  {name}")
        print(f"    {accounted * 1000:8.1f}  = in-process total")
        print(
            f"    {(whole - accounted) * 1000:8.1f}  interpreter start-up and exit (whole child {whole * 1000:.0f} ms)"
        )


def summary(results: list[SizeResult]) -> str:
    by_size = {r.size: r for r in results}
    lines = [f"{'DESIGN target':<44} {'size':>7} {'target':>9} {'measured':>10} {'/numpy':>7}  verdict"]
    for what, size, key, target, unit in TARGETS:
        if size not in by_size:
            continue
        figures = by_size[size].figures
        value = figures.get(key)
        if value is None:
            continue
        numpy = figures.get("numpy_around_changes_p50" if "after_change" in key else "numpy_p50")
        if unit == "x":
            shown, goal, ratio = f"{value:.2f}x", f"<= {target}x", f"{value:.2f}x"
        elif unit == "MB":
            shown, goal, ratio = f"{value:.0f} MB", f"<= {target:.0f} MB", ""
        else:
            shown, goal = _fmt_s(value), f"<= {_fmt_s(target)}"
            ratio = f"{value / numpy:.2f}x" if numpy and key.startswith("index_") else ""
        verdict = "meets" if value <= target else "MISSES"
        lines.append(f"{what:<44} {size:>7,} {goal:>9} {shown:>10} {ratio:>7}  {verdict}")
    if len(lines) == 1:
        lines.append("(DESIGN.md gives targets at 10,000 and 100,000 memories only)")
    lines.append("")
    lines.append(f"{'size':>7} {'numpy p50':>10} {'recall p50':>11} {'p90':>8} {'ratio':>6} {'bm25':>8} {'dense':>8}")
    for r in results:
        f = r.figures
        lines.append(
            f"{r.size:>7,} {_fmt_s(f['numpy_p50']):>10} {_fmt_s(f['recall_p50']):>11} {_fmt_s(f['recall_p90']):>8} "
            f"{f['recall_ratio']:>5.2f}x {_fmt_s(f['recall_bm25_p50']):>8} {_fmt_s(f['recall_dense_p50']):>8}"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    head = subprocess.run(
        ["git", "-C", str(pools.REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    numpy_version = subprocess.run(
        [PYTHON, "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "executable": PYTHON,
        "mtlgit": MTLGIT,
        "numpy": numpy_version,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "mtlgit_head": head,
        "pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def compile_package(package: Path) -> dict[str, int]:
    """Byte-compile ``package`` and return its sources' mtimes, to notice edits made while the benchmark runs
    (an edited module has a stale .pyc, and with PYTHONDONTWRITEBYTECODE=1 it is compiled again in every process).
    """
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(package)], check=True)
    return sources_state(package)


def sources_state(package: Path) -> dict[str, int]:
    return {str(p.relative_to(package)): p.stat().st_mtime_ns for p in sorted(package.rglob("*.py"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Whole-process recall and index benchmarks of mtlgit.")
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated pool sizes")
    parser.add_argument("--runs", type=int, default=15, help="recall runs per size (interleaved with the baseline)")
    parser.add_argument("--layout", choices=pools.LAYOUTS, default="add", help="pool file layout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", type=Path, default=None, help="where to build the pools (default: system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the pools")
    parser.add_argument("--profile", action="store_true", help="also -X importtime and cProfile one recall")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not Path(MTLGIT).exists():
        print(f"bench_recall: no mtlgit console script next to {PYTHON}", file=sys.stderr)
        return 1

    spec = importlib.util.find_spec("mtlgit")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    compile_package(package)
    env = environment()
    print(
        f"mtlgit bench_recall: {MTLGIT} (HEAD {env['mtlgit_head']}), Python {env['python']}, numpy {env['numpy']}, "
        f"{env['cpus']} CPUs"
    )
    dont_write = env["pythondontwritebytecode"]
    print(
        f"PYTHONDONTWRITEBYTECODE={dont_write or '(unset)'} in this environment: ran `python -m compileall -q "
        f"{package}` first, so every measured process reads mtlgit's .pyc files instead of compiling them."
    )
    print(f"Sizes {sizes}, {args.runs} interleaved runs each; times are wall-clock medians of whole processes.")

    results: list[SizeResult] = []
    profiles: dict[int, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="mtlgit-bench-", dir=args.tmp))
    try:
        for size in sizes:
            before = compile_package(package)
            result = bench_size(size, args.runs, workdir, args.layout, args.seed, keep=args.keep or args.profile)
            changed = sorted(k for k, v in sources_state(package).items() if before.get(k) != v)
            if changed:
                result.notes.append(
                    f"WARNING: mtlgit sources changed during this size's runs ({', '.join(changed)}): runs after the "
                    "change compiled those modules on every start (stale .pyc); figures may be inflated"
                )
            if args.profile:
                pool = workdir / f"pool-{size}"
                profiles[size] = profile_recall(pool, QUERIES[0], memory_files(pool))
                if not args.keep:
                    shutil.rmtree(workdir / f"pool-{size}", ignore_errors=True)
            results.append(result)
            print_size(result)
            if size in profiles:
                print(profiles[size])
            sys.stdout.flush()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("== summary: DESIGN.md section 7 targets ==")
    print(summary(results))
    if args.json:
        data = {"environment": env, "sizes": {str(r.size): r.figures for r in results}, "notes": {}}
        data["notes"] = {str(r.size): r.notes for r in results}
        if profiles:
            data["profiles"] = {str(k): v for k, v in profiles.items()}
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
