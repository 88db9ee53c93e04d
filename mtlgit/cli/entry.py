"""The ``mtlgit`` console script and ``python -m mtlgit``: the recall fast path first, then click."""

from __future__ import annotations

import os
import sys


def console() -> None:
    # Before numpy loads: recall's matrix-vector products are memory-bound, so a second BLAS thread gains nothing
    # and costs its start-up and, on a busy machine, its waits (10k pool, whole `mtlgit recall`: median 297 ms
    # with one thread, 374 ms with two; the MCP server's calls were up to ~5x slower, bench_two_stage.py).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from mtlgit import errors

    errors.DEFERRED_NOTES = []
    exit_now(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    from mtlgit.cli.fast import try_recall

    try:
        code = try_recall(argv)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001 - handled as in every other command
        from mtlgit.cli.main import handle_exception

        return handle_exception()
    if code is not None:
        return code
    from mtlgit.cli.main import main

    return main(argv)


def exit_now(code: int) -> None:
    """Flush and leave without tearing down the interpreter: freeing every object of a large index at exit
    costs ~90 ms a process at 100k memories, and every file mtlgit writes is already closed."""
    from mtlgit import errors

    try:
        if code == 0 and errors.DEFERRED_NOTES:
            sys.stderr.write("".join(line + "\n" for line in errors.DEFERRED_NOTES))
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)
