"""Commands for moving memories in and out: prompt extract, import, export, stats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import filter_options, json_option, split_words
from mtlgit.errors import MtlgitError


@click.group()
def prompt() -> None:
    """Instructions for agents.

    \b
    Example:
        mtlgit prompt extract --outcome failure
    """


@prompt.command()
@click.option("--outcome", type=click.Choice(["success", "failure"]), required=True, help="How the attempt ended.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["insight", "workflow", "summary"]),
    default="insight",
    show_default=True,
    help="What each item is: insight (1-3 sentences), workflow (a goal and steps) or summary (task, experience).",
)
@click.option(
    "--max-items",
    default=3,
    show_default=True,
    type=click.IntRange(1, 20),
    help="The most items the agent may answer with.",
)
@click.option("--receipt", metavar="RC", help="Also ask which items of this recall were used (outcome ledger).")
def extract(outcome: str, fmt: str, max_items: int, receipt: str | None) -> None:
    """Print what an agent follows to turn a finished attempt into memory items (JSON for `add --items -`).

    \b
    Example:
        mtlgit prompt extract --outcome success > extract.txt
        # the agent answers with JSON; store it:
        mtlgit add --items - < answer.json
    """
    from mtlgit.extract import extraction_prompt

    click.echo(extraction_prompt(outcome, fmt, max_items), nl=False)
    if receipt:
        from mtlgit.ledger import extract_request
        from mtlgit.repo import find_repo

        click.echo(extract_request(find_repo(), receipt, outcome), nl=False)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--domain", help="Set this domain on every imported memory (default: from the folder name).")
@click.option("--force", is_flag=True, help="Import near-duplicates too.")
@click.option("--dry-run", is_flag=True, help="Run every check of a real import and report; write nothing.")
@json_option
def import_(path: Path, domain: str | None, force: bool, dry_run: bool, as_json: bool) -> None:
    """Import guidance written for other tools as memories.

    Reads ReasoningBank-style JSONL (memory items with their task, query and outcome; docs/format.md), the
    JSONL of `mtlgit export` (ids, dates, status and supersession kept; an id the pool has is skipped), Cursor
    rules (.mdc files: a long guide becomes an overview and one insight per section; .cursorrules) and the
    bullet sections of CLAUDE.md / AGENTS.md, in a file or a folder. Each item is checked like `mtlgit add`
    (validation, secrets, near-duplicates); skipped ones are listed with the reason, a secret by the line of
    the source file where it is. The exit code is 1 when any item was skipped (README, "Exit codes").

    \b
    Example:
        mtlgit import ~/src/awesome-cursorrules/rules --dry-run
        mtlgit import memories.jsonl --domain web
        mtlgit export --all -o pool.jsonl   # elsewhere: mtlgit import pool.jsonl
    """
    from mtlgit.importers import import_path

    pool = open_pool()
    pool.check_set_up()  # before the input is read: an empty or odd file must not hide the fix
    report = import_path(pool, path, domain=domain, force=force, dry_run=dry_run)
    if not report.imported and not report.skipped:
        raise MtlgitError(f"nothing to import in {path}: no memory item in a format `mtlgit import --help` lists")
    if as_json:
        echo_json(report.to_json())
    else:
        for source, reason in report.skipped:
            click.echo(f"skipped {source}: {reason}")
        verb = "would import" if dry_run else "imported"
        click.echo(f"{verb} {len(report.imported)}, skipped {len(report.skipped)}")
    if report.skipped:
        raise click.exceptions.Exit(1)


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@filter_options
@click.option("--all", "include_all", is_flag=True, help="Include retired and superseded memories.")
def export(
    output: Path | None,
    formats: tuple[str, ...],
    domains: tuple[str, ...],
    exclude_domains: tuple[str, ...],
    tags: tuple[str, ...],
    scopes: tuple[str, ...],
    include_all: bool,
) -> None:
    """Export the pool as JSON lines (title, description, content and every other field), with the filters of
    `mtlgit list`.

    \b
    Example:
        mtlgit export -o pool.jsonl
        mtlgit export --domain python --tag testing -o python-testing.jsonl
        mtlgit export --all | jq .title
    """
    import json

    pool = open_pool()
    memories = pool.select(
        formats=formats,
        domains=split_words(domains),
        exclude_domains=split_words(exclude_domains),
        tags=split_words(tags),
        scopes=scopes,
        statuses=() if include_all else ("active",),
        indexed=True,
    )
    lines = "".join(json.dumps(m.to_json(), ensure_ascii=False, default=str) + "\n" for m in memories)
    if output is None:
        sys.stdout.write(lines)
    else:
        output.write_text(lines, encoding="utf-8")
        click.echo(f"exported {len(memories)} memories to {output}", err=True)


@click.command()
@click.option("--usefulness", is_flag=True, help="Per memory: recalled, used, success when used or not (ledger).")
@json_option
def stats(usefulness: bool, as_json: bool) -> None:
    """Count the memories by format, scope, outcome, status, domain and pool: this repository's and those of
    its pools (`mtlgit pool`), of every status. Each line adds up to the first but domain: a memory may have
    several.

    Transfer grows with the pool's size and the diversity of its domains.

    \b
    Example:
        mtlgit stats
        mtlgit stats --json
        mtlgit stats --usefulness
    """
    from collections import Counter

    pool = open_pool()
    if usefulness:
        from mtlgit.cli.feedback_cmd import print_usefulness

        return print_usefulness(pool, as_json)
    loaded = pool.load_indexed()
    records = [m.to_json() for m in loaded.memories]
    pooled = _pool_records(pool)
    everything = records + [r for found in pooled.values() for r in found]
    counts = {
        "memories": len(everything),
        "unreadable_files": len({p.path for p in loaded.problems if p.is_error}),
    }
    groups = {
        key: dict(Counter(str(r.get(key)) for r in everything).most_common())
        for key in ("format", "scope", "outcome", "status")
    }
    domains = Counter(d.lower() for r in everything for d in r.get("domains") or ["(none)"])
    groups["domain"] = dict(domains.most_common())
    groups["pool"] = {"local": len(records), **{name: len(found) for name, found in pooled.items()}}
    if as_json:
        echo_json({**counts, **groups})
        return
    where = f" ({len(records)} in this repository, {len(everything) - len(records)} in pools)" if pooled else ""
    click.echo(
        f"{counts['memories']} memories{where}"
        + (f", {counts['unreadable_files']} unreadable file(s)" if counts["unreadable_files"] else "")
    )
    for key, values in groups.items():
        click.echo(f"{key + ':':<9} " + (", ".join(f"{name} {n}" for name, n in values.items()) or "-"))


def _pool_records(pool: object) -> dict[str, list[dict[str, Any]]]:
    """The memories of each configured pool (none when it is not synced)."""
    from mtlgit import pools
    from mtlgit.store import Pool

    assert isinstance(pool, Pool)
    found: dict[str, list[dict[str, Any]]] = {}
    for spec in pools.parse_pools(pool.config):
        snapshot = pools.pool_snapshot(pool.repo, spec)
        found[spec.name] = snapshot.records(range(snapshot.n_docs)) if snapshot is not None else []
    return found
