from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import filter_options, json_option, split_words


@click.command("list")
@filter_options
@click.option("--all", "show_all", is_flag=True, help="Include retired and superseded memories.")
@click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME",
    help="List only this pool (repeatable; 'local' is this repository's own memories).",
)
@click.option("--local-only", is_flag=True, help="List only this repository's memories, no other pool.")
@json_option
def list_memories(
    formats: tuple[str, ...],
    domains: tuple[str, ...],
    exclude_domains: tuple[str, ...],
    tags: tuple[str, ...],
    scopes: tuple[str, ...],
    show_all: bool,
    pools: tuple[str, ...],
    local_only: bool,
    as_json: bool,
) -> None:
    """List the memories of this repository and its synced pools (active ones unless --all).

    \b
    Example:
        mtlgit list --format insight --domain python
        mtlgit list --local-only --all --json
        mtlgit list --pool platform
    """
    from mtlgit import pools as pool_lib
    from mtlgit.store import select

    pool = open_pool()
    names = ("local",) if local_only else pools
    others = tuple(n for n in names if n != "local")
    memories = pool.load_indexed().memories if not names or "local" in names else []
    if not names or others:
        memories = memories + pool_lib.pool_memories(pool.repo, pool.config, others)
    memories = select(
        memories,
        formats=formats,
        domains=split_words(domains),
        exclude_domains=split_words(exclude_domains),
        tags=split_words(tags),
        scopes=scopes,
        statuses=() if show_all else ("active",),
    )
    memories.sort(key=lambda m: (m.pool != "local", m.pool, m.created or "", m.id))
    if as_json:
        echo_json([m.to_json() for m in memories])
    else:
        for m in memories:
            status = "" if m.status == "active" else f" ({m.status})"
            domains_text = f"  [{', '.join(m.domains)}]" if m.domains else ""
            where = "" if m.pool == "local" else f"  (pool {m.pool})"
            click.echo(f"{m.id}  {m.format:<10}  {m.title}{status}{domains_text}{where}")
    if not memories:
        from mtlgit.config import missing_memories_folder

        missing = missing_memories_folder(pool.root, pool.config.memories)
        if missing:
            click.echo(f"note: no memories: {missing}", err=True)
    unreadable = {p.path for p in pool.load_indexed().problems if p.is_error}
    if unreadable and not as_json and (not names or "local" in names):
        click.echo(f"{len(unreadable)} file(s) could not be read: `mtlgit lint` shows why", err=True)
