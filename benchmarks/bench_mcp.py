"""Recall latency through the MCP server: the SDK's real stdio client against ``mtlgit mcp`` on a 10k pool.

The server keeps the index and the model loaded; this measures the round trip of one ``recall`` tool call
(client -> JSON-RPC over a pipe -> freshness check -> scoring -> Memory Item text and structured results ->
client), the median and p90 of many calls with rotating queries, after a warm-up. Targets: p50 <= 4 ms at 1k
(the server's own overhead: recall itself costs ~1-2 ms there), <= 20 ms at 10k (agent integration), <= 10 ms
at 100k (issue 14: ``--pool`` with a pool made by ``pools.py``).

Run it::

    .venv/bin/python benchmarks/bench_mcp.py                 # 10k memories, 200 calls
    .venv/bin/python benchmarks/bench_mcp.py --size 1000 --calls 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pools import build_pool

QUERIES = [
    "fix a failing pytest test in a django project",
    "the shell script expands $HOME inside a heredoc",
    "an API call fails with an unexpected keyword argument",
    "pandas merge returns more rows than expected",
    "the build works locally but fails in CI",
    "parse a date string with a timezone",
    "retry a flaky network request",
    "the answer must be printed in an exact format",
]


async def measure(repo: Path, calls: int) -> list[float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mtlgit", "mcp"], cwd=str(repo), env=dict(os.environ)
    )
    timings: list[float] = []
    async with Client(params, read_timeout_seconds=300) as client:
        for query in QUERIES:  # warm-up: first calls load pages of the index and the model
            await client.call_tool("recall", {"query": query})
        for n in range(calls):
            started = time.perf_counter()
            result = await client.call_tool("recall", {"query": QUERIES[n % len(QUERIES)]})
            timings.append(time.perf_counter() - started)
            assert not result.is_error, result
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--pool", type=Path, help="an existing pool (made with pools.py) instead of a new one")
    args = parser.parse_args()
    if args.pool is not None:
        subprocess.run([sys.executable, "-m", "mtlgit", "index"], cwd=args.pool, check=True, capture_output=True)
        report(args.pool, args.calls)
        return 0
    with tempfile.TemporaryDirectory(prefix="mtlgit-bench-mcp-") as tmp:
        repo = Path(tmp) / "pool"
        build_pool(repo, args.size)
        subprocess.run([sys.executable, "-m", "mtlgit", "index"], cwd=repo, check=True, capture_output=True)
        report(repo, args.calls)
    return 0


def report(repo: Path, calls: int) -> None:
    timings = sorted(anyio.run(measure, repo, calls))
    p50 = statistics.median(timings) * 1000
    p90 = timings[int(len(timings) * 0.9)] * 1000
    size = sum(1 for _ in (repo / "memories").rglob("*.md"))
    print(
        f"MCP recall on a pool of {size} memories, {calls} calls: p50 {p50:.1f} ms, "
        f"p90 {p90:.1f} ms, min {timings[0] * 1000:.1f} ms "
        "(targets: p50 <= 4 ms at 1k, <= 20 ms at 10k, <= 10 ms at 100k)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
