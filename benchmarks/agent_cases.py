"""Agent-memory retrieval cases: tasks an agent meets, and the starter memories that should come back.

``agent_cases/cases.tsv`` holds 43 task descriptions written for this benchmark, in words chosen not to repeat
the memories' own, each with the ids of the starter memories (``memories/``) whose lesson applies. This script
writes them in BEIR layout (corpus = the starter pool, queries, qrels) and runs ``mtlgit eval`` on them, at
the dense weights given: the agent-memory side of choosing the fusion weight (SciFact is the other).

Run it::

    .venv/bin/python benchmarks/agent_cases.py                       # default weights
    .venv/bin/python benchmarks/agent_cases.py --dense-weight 0.2 --dense-weight 0.5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).resolve().parent / "agent_cases" / "cases.tsv"


def write_beir(folder: Path) -> int:
    """corpus.jsonl from the starter memories, queries.jsonl and qrels.tsv from the cases; the number of cases."""
    sys.path.insert(0, str(ROOT))
    from mtlgit.memory import parse_bytes

    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as corpus:
        for path in sorted((ROOT / "memories").rglob("*.md")):
            memory, _problems = parse_bytes(path.read_bytes(), path.name)
            assert memory is not None, path
            text = "\n".join(p for p in (memory.description, memory.goal, memory.content) if p)
            corpus.write(json.dumps({"_id": memory.id, "title": memory.title, "text": text}) + "\n")
    lines = CASES.read_text(encoding="utf-8").splitlines()[1:]
    with (
        open(folder / "queries.jsonl", "w", encoding="utf-8") as queries,
        open(folder / "qrels.tsv", "w", encoding="utf-8") as qrels,
    ):
        qrels.write("query-id\tcorpus-id\tscore\n")
        for number, line in enumerate(lines, 1):
            text, ids = line.split("\t")
            queries.write(json.dumps({"_id": f"q{number}", "text": text}) + "\n")
            for memory_id in ids.split(","):
                qrels.write(f"q{number}\t{memory_id.strip()}\t1\n")
    return len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dense-weight", dest="weights", action="append", type=float, default=[])
    args = parser.parse_args()
    weights = args.weights or [0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7]
    with tempfile.TemporaryDirectory(prefix="mtlgit-agent-cases-") as tmp:
        folder = Path(tmp)
        count = write_beir(folder)
        command = [sys.executable, "-m", "mtlgit", "eval", str(folder)]
        for weight in weights:
            command += ["--dense-weight", str(weight)]
        print(f"{count} agent-memory cases over the starter pool")
        subprocess.run(command, check=True, cwd=folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
