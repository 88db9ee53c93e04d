from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import filter_options, json_option, split_words


@click.command("list")
@filter_options
@click.option("--all", "show_all", is_flag=True, help="Include retired and superseded memories.")
@json_option
def list_memories(
    formats: tuple[str, ...],
    domains: tuple[str, ...],
    exclude_domains: tuple[str, ...],
    tags: tuple[str, ...],
    scopes: tuple[str, ...],
    show_all: bool,
    as_json: bool,
) -> None:
    """List the memories of the pool (active ones unless --all).

    \b
    Example:
        mtlgit list --format insight --domain python
        mtlgit list --all --json
    """
    pool = open_pool()
    memories = pool.select(
        formats=formats,
        domains=split_words(domains),
        exclude_domains=split_words(exclude_domains),
        tags=split_words(tags),
        scopes=scopes,
        statuses=() if show_all else ("active",),
        indexed=True,
    )
    memories.sort(key=lambda m: (m.created or "", m.id))
    if as_json:
        echo_json([m.to_json() for m in memories])
    else:
        for m in memories:
            status = "" if m.status == "active" else f" ({m.status})"
            domains_text = f"  [{', '.join(m.domains)}]" if m.domains else ""
            click.echo(f"{m.id}  {m.format:<10}  {m.title}{status}{domains_text}")
    if not memories:
        from mtlgit.config import missing_memories_folder

        missing = missing_memories_folder(pool.root, pool.config.memories)
        if missing:
            click.echo(f"note: no memories: {missing}", err=True)
    unreadable = {p.path for p in pool.load_indexed().problems if p.is_error}
    if unreadable and not as_json:
        click.echo(f"{len(unreadable)} file(s) could not be read: `mtlgit lint` shows why", err=True)
