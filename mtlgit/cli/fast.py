"""A fast path for ``mtlgit recall``: agents run it before every task, and click's import alone (~40 ms) is a
fifth of a recall. Well-formed recall arguments are parsed here with argparse into the same
:class:`~mtlgit.recall_request.RecallRequest` as the click command builds, and run by the same code
(:mod:`mtlgit.cli.recall_run`); anything else -- ``--help``, a value the request refuses, an unknown option, a
query to read from a terminal -- returns None and goes to click, which owns usage and help. A test keeps the
two parsers' options identical.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mtlgit.recall_request import RecallRequest


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtlgit recall", add_help=False, exit_on_error=False, allow_abbrev=False)
    p.add_argument("query", nargs="*")
    p.add_argument("--query-file")
    p.add_argument("--hook-input", action="store_true")
    p.add_argument("-k", type=int)
    p.add_argument("--mode")
    p.add_argument("--format", dest="formats", action="append", default=[])
    p.add_argument("--domain", dest="domains", action="append", default=[])
    p.add_argument("--exclude-domain", dest="exclude_domains", action="append", default=[])
    p.add_argument("--tag", dest="tags", action="append", default=[])
    p.add_argument("--scope", dest="scopes", action="append", default=[])
    p.add_argument("--include-retired", action="store_true")
    p.add_argument("--trajectories", dest="include_trajectories", action="store_true")
    p.add_argument("--pool", dest="pools", action="append", default=[])
    p.add_argument("--local-only", action="store_true")
    p.add_argument("--rev")
    p.add_argument("--reviewed", action="store_true")
    p.add_argument("--min-confidence", type=float)
    p.add_argument("--budget", type=int)
    p.add_argument("--explain", action="store_true")
    p.add_argument("--json", dest="output", action="store_const", const="json")
    p.add_argument("--paths", dest="output", action="store_const", const="paths")
    p.add_argument("--prompt", dest="output", action="store_const", const="prompt")
    return p


class _Fallback(Exception):
    """Not for the fast path: let click parse (and explain) these arguments."""


def try_recall(argv: list[str]) -> int | None:
    """Run ``recall`` from ``argv`` (the arguments after the program name); None means "use click"."""
    args = list(argv)
    directory = None
    if len(args) >= 2 and args[0] == "-C":
        directory, args = args[1], args[2:]
    if not args or args[0] != "recall" or any(a in ("-h", "--help") for a in args[1:]):
        return None
    try:
        options, request = _parse(args[1:])
    except _Fallback:
        return None
    from mtlgit.cli.recall_run import read_query, run
    from mtlgit.errors import MtlgitError

    if directory is not None:
        try:
            os.chdir(directory)
        except OSError:
            return None
    try:
        text = read_query(options.query, options.query_file, options.hook_input)
        run(request.with_query(text), options.output, tool="hook" if options.hook_input else "cli")
    except MtlgitError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    return 0


def _parse(args: list[str]) -> tuple[argparse.Namespace, RecallRequest]:
    from pathlib import Path

    from mtlgit.cli.args import split_words
    from mtlgit.recall_request import RecallRequest, RequestError

    try:
        options, unknown = parser().parse_known_args(args)
    except (argparse.ArgumentError, SystemExit):
        raise _Fallback from None
    if unknown:
        raise _Fallback
    if options.query_file is not None:
        options.query_file = Path(options.query_file)
        if not options.query_file.is_file():
            raise _Fallback
    if not options.hook_input and options.query_file is None and not options.query and sys.stdin.isatty():
        raise _Fallback
    try:
        request = RecallRequest(
            k=options.k,
            mode=options.mode,
            formats=options.formats,
            domains=tuple(split_words(options.domains)),
            exclude_domains=tuple(split_words(options.exclude_domains)),
            tags=tuple(split_words(options.tags)),
            scopes=options.scopes,
            include_retired=options.include_retired,
            include_trajectories=options.include_trajectories,
            pools=("local",) if options.local_only else options.pools,
            rev=options.rev,
            reviewed=options.reviewed,
            min_confidence=options.min_confidence,
            budget=options.budget,
            explain=options.explain,
        )
    except RequestError:
        raise _Fallback from None  # click says what is wrong, with its usage line
    return options, request
