"""Write cases43.jsonl from the 43 agent cases of ../../agent_cases/cases.tsv (which stays as it is).

Each case names the memories it was written for, all equally relevant, so each gets grade 2. They were used to
choose the fusion weight, hence split "dev". Run: python benchmarks/agent_tasks/regression/from_tsv.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE.parents[1] / "agent_cases" / "cases.tsv"


def main() -> None:
    rows = []
    for number, line in enumerate(CASES.read_text(encoding="utf-8").splitlines()[1:], 1):
        text, ids = line.split("\t")
        labels = {memory.strip(): 2 for memory in ids.split(",") if memory.strip()}
        row = {"id": f"c43-{number:03d}", "split": "dev", "style": "cases43", "kind": "plain", "task": text}
        rows.append(json.dumps({**row, "labels": labels}, ensure_ascii=False) + "\n")
    (HERE / "cases43.jsonl").write_text("".join(rows), encoding="utf-8")


if __name__ == "__main__":
    main()
