from __future__ import annotations

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.cli.paths import from_here


@click.command()
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1), help="Show at most this many pairs.")
@json_option
def dedup(limit: int, as_json: bool) -> None:
    """List pairs of active memories that say the same thing (near-duplicates).

    A pair is a near-duplicate when its embedding cosine is at least 0.9 or it shares 70% of its terms.
    Retire one of each pair with `mtlgit retire ID --superseded-by OTHER`.

    \b
    Example:
        mtlgit dedup
        mtlgit dedup --json --limit 20
    """
    from mtlgit.dedup import duplicate_pairs
    from mtlgit.index import WorktreeIndex
    from mtlgit.intake import identical
    from mtlgit.repo import find_repo

    repo = find_repo()
    snapshot = WorktreeIndex(repo).fresh()
    pairs = duplicate_pairs(snapshot, limit)
    if as_json:
        echo_json(
            [
                {
                    "cosine": round(a.cosine, 4),
                    "jaccard": round(a.jaccard, 4),
                    "identical": identical(a.memory, b.memory),
                    "a": {"id": a.memory["id"], "title": a.memory["title"], "path": a.path},
                    "b": {"id": b.memory["id"], "title": b.memory["title"], "path": b.path},
                }
                for a, b in pairs
            ]
        )
        return
    if not pairs:
        click.echo(f"No near-duplicates among {snapshot.n_docs} memories.")
        return
    for a, b in pairs:
        same = identical(a.memory, b.memory)
        click.echo("identical text" if same else f"cosine {a.cosine:.2f}, shared terms {a.jaccard:.2f}")
        click.echo(f"  {a.memory['id']}  {a.memory['title']}  ({from_here(repo.root, a.path)})")
        click.echo(f"  {b.memory['id']}  {b.memory['title']}  ({from_here(repo.root, b.path)})")
    click.echo(f"{len(pairs)} pair(s); retire one of each with `mtlgit retire ID --superseded-by OTHER`")
