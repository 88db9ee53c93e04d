"""Commands for moving memories in and out: prompt extract, import, export, stats."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option


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
    "--format", "fmt", type=click.Choice(["insight", "workflow", "summary"]), default="insight", show_default=True
)
@click.option("--max-items", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--receipt", metavar="RC", help="Also ask which items of this recall were used (outcome ledger).")
def extract(outcome: str, fmt: str, max_items: int, receipt: str | None) -> None:
    """Print what an agent follows to turn a finished attempt into memory items (JSON for `add --json -`).

    \b
    Example:
        mtlgit prompt extract --outcome success > extract.txt
        # the agent answers with JSON; store it:
        mtlgit add --json - < answer.json
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
    the source file where it is. Exit 1 when something was skipped and nothing imported.

    \b
    Example:
        mtlgit import ~/src/awesome-cursorrules/rules --dry-run
        mtlgit import memories.jsonl --domain web
        mtlgit export --all -o pool.jsonl   # elsewhere: mtlgit import pool.jsonl
    """
    from mtlgit.importers import import_path

    report = import_path(open_pool(), path, domain=domain, force=force, dry_run=dry_run)
    if as_json:
        echo_json(report.to_json())
    else:
        for source, reason in report.skipped:
            click.echo(f"skipped {source}: {reason}")
        verb = "would import" if dry_run else "imported"
        click.echo(f"{verb} {len(report.imported)}, skipped {len(report.skipped)}")
    if report.skipped and not report.imported:
        raise click.exceptions.Exit(1)


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@click.option("--all", "include_all", is_flag=True, help="Include retired and superseded memories.")
def export(output: Path | None, include_all: bool) -> None:
    """Export the pool as JSON lines (title, description, content and every other field).

    \b
    Example:
        mtlgit export -o pool.jsonl
        mtlgit export --all | jq .title
    """
    import json

    pool = open_pool()
    memories = pool.select(statuses=() if include_all else ("active",), indexed=True)
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
    """Count the pool's memories by format, scope, outcome, status and domain.

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
    memories = loaded.memories
    counts = {
        "memories": len(memories),
        "unreadable_files": len({p.path for p in loaded.problems if p.is_error}),
    }
    groups = {
        key: dict(Counter(getattr(m, key) for m in memories).most_common())
        for key in ("format", "scope", "outcome", "status")
    }
    groups["domain"] = dict(Counter(d.lower() for m in memories for d in m.domains or ("(none)",)).most_common())
    groups["pool"] = {"local": len(memories), **_pool_counts(pool, groups["domain"])}
    if as_json:
        echo_json({**counts, **groups})
        return
    click.echo(
        f"{counts['memories']} memories"
        + (f", {counts['unreadable_files']} unreadable file(s)" if counts["unreadable_files"] else "")
    )
    for key, values in groups.items():
        click.echo(f"{key + ':':<9} " + (", ".join(f"{name} {n}" for name, n in values.items()) or "-"))


def _pool_counts(pool: object, domains: dict[str, int]) -> dict[str, int]:
    """Memories of each synced pool; their domains are added to ``domains``."""
    from collections import Counter

    from mtlgit import pools
    from mtlgit.store import Pool

    assert isinstance(pool, Pool)
    counts: dict[str, int] = {}
    extra: Counter[str] = Counter()
    for spec in pools.parse_pools(pool.config):
        snapshot = pools.pool_snapshot(pool.repo, spec)
        if snapshot is None:
            counts[spec.name] = 0
            continue
        records = [r for r in snapshot.records(range(snapshot.n_docs)) if r.get("status") == "active"]
        counts[spec.name] = len(records)
        extra.update(d.lower() for r in records for d in r.get("domains") or ["(none)"])
    for name, n in extra.items():
        domains[name] = domains.get(name, 0) + n
    return counts
