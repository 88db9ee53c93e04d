"""Check agent-task files against the starter memories and print their counts.

Usage: python benchmarks/agent_tasks/check_tasks.py [FILE.jsonl ...]   (default: every *.jsonl here)
Exits 1 naming the file and line of the first problem found in each file.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEMORIES = HERE.parent.parent / "memories"
KINDS = {"plain", "traceback", "log", "code"}


def memory_ids() -> set[str]:
    ids = set()
    for path in MEMORIES.rglob("*.md"):
        found = re.search(r"^id:\s*(\S+)", path.read_text(encoding="utf-8"), re.M)
        if found:
            ids.add(found.group(1).strip("'\""))
    return ids


def check(path: Path, known: set[str]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    counts: Counter[tuple[str, str]] = Counter()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        if row.get("id") in seen:
            problems.append(f"{where}: duplicate id {row.get('id')}")
        seen.add(row.get("id"))
        if row.get("split") not in ("dev", "test"):
            problems.append(f"{where}: split must be dev or test")
        if not isinstance(row.get("style"), str) or not row["style"]:
            problems.append(f"{where}: missing style")
        if row.get("kind") not in KINDS:
            problems.append(f"{where}: unknown kind {row.get('kind')!r}")
        if not str(row.get("task", "")).strip():
            problems.append(f"{where}: empty task")
        labels = row.get("labels", {})
        for memory, grade in labels.items():
            if memory not in known:
                problems.append(f"{where}: label {memory} is not a starter memory id")
            if grade not in (1, 2):
                problems.append(f"{where}: grade {grade!r} for {memory} must be 1 or 2")
        if labels and 2 not in labels.values():
            problems.append(f"{where}: labelled but no grade-2 (central) memory")
        if row.get("style") == "none" and labels:
            problems.append(f"{where}: a 'none' task carries labels")
        counts[("style", row.get("style"))] += 1
        counts[("split", row.get("split"))] += 1
        counts[("kind", row.get("kind"))] += 1
        counts[("style/split", f"{row.get('style')}/{row.get('split')}")] += 1
        counts[("labelled", "yes" if labels else "no")] += 1
    total = len(seen)
    print(f"{path.name}: {total} tasks")
    for group in ("style", "split", "kind", "style/split", "labelled"):
        items = sorted((k, v) for (g, k), v in counts.items() if g == group)
        print(f"  {group:<12}" + ", ".join(f"{k} {v}" for k, v in items))
    rich = sum(v for (g, k), v in counts.items() if g == "kind" and k != "plain")
    print(f"  traceback/log/code: {rich}/{total} = {rich / max(total, 1):.0%}")
    return problems


def main(argv: list[str]) -> int:
    known = memory_ids()
    files = [Path(a) for a in argv] or sorted(HERE.glob("*.jsonl"))
    failed = False
    for path in files:
        problems = check(path, known)
        for problem in problems:
            print(f"  PROBLEM {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
