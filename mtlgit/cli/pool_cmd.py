from __future__ import annotations

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.rules import is_pool_name


@click.group()
def pool() -> None:
    """Share memories across repositories: other teams' pools, fetched by git, recalled with yours.

    \b
    Example:
        mtlgit pool add platform https://git.example.com/platform.git --domain backend --trust reviewed
        mtlgit pool sync
        mtlgit recall "retry a flaky HTTP call"      # searches this repository and every pool
    """


@pool.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--ref", default="main", show_default=True, help="Branch or tag to read the memories from.")
@click.option("--folder", default="memories", show_default=True, help="The pool's memories folder.")
@click.option("--domain", default="", help="A domain label for all of the pool's memories.")
@click.option(
    "--trust",
    type=click.Choice(["reviewed", "untrusted"]),
    default="untrusted",
    show_default=True,
    help="Whether the pool's memories passed review; untrusted ones are flagged to agents.",
)
@click.option("--no-sync", is_flag=True, help="Only add it to .mtlgit.yaml.")
def add(name: str, url: str, ref: str, folder: str, domain: str, trust: str, no_sync: bool) -> None:
    """Add a pool to .mtlgit.yaml (and sync it).

    URL is anything git can fetch: https, ssh, file://, or a local path. Credentials are git's own business.

    \b
    Example:
        mtlgit pool add frontend ../frontend-app --domain frontend
    """
    from mtlgit import pools
    from mtlgit.repo import find_repo

    repo = find_repo()
    spec = pools.PoolSpec(name, url, ref, folder.strip("/"), domain, trust)
    pools.check_spec(spec, f"pool '{name}'")
    if not is_pool_name(name):
        raise click.UsageError(f"pool name {name!r}: use lower-case letters, digits, '-' or '_' (not 'local')")
    pools.add_to_config(repo.root, spec)
    click.echo(f"Added pool '{name}' to .mtlgit.yaml")
    if not no_sync:
        _report(pools.sync(repo, spec, repo.root))


@pool.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove a pool from .mtlgit.yaml and delete its mirror and index.

    \b
    Example:
        mtlgit pool remove frontend
    """
    from mtlgit import pools
    from mtlgit.repo import find_repo

    repo = find_repo()
    pools.remove_from_config(repo.root, name)
    pools.forget(repo, name)
    click.echo(f"Removed pool '{name}' (its mirror and index are gone)")


@pool.command("list")
@json_option
def list_pools(as_json: bool) -> None:
    """List the pools with their last sync.

    \b
    Example:
        mtlgit pool list --json
    """
    import time

    from mtlgit import pools
    from mtlgit.config import load_config
    from mtlgit.repo import find_repo

    repo = find_repo()
    rows = []
    for spec in pools.parse_pools(load_config(repo.root)):
        status = pools.read_status(repo, spec.name)
        rows.append({**spec.__dict__, "status": status})
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No pools: `mtlgit pool add NAME URL` adds one.")
    for row in rows:
        status = row["status"]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(status["synced"])) if status.get("synced") else "never"
        state = f"{status.get('memories', 0)} memories" if status.get("snapshot") else "not synced"
        error = f"  last sync failed: {status['error']}" if status.get("error") else ""
        domain = f" [{row['domain']}]" if row["domain"] else ""
        click.echo(
            f"{row['name']}{domain} ({row['trust']}): {row['url']} @ {row['ref']}/{row['folder']} -- "
            f"{state}, synced {when}{error}"
        )


@pool.command("sync")
@click.argument("names", nargs=-1)
def sync(names: tuple[str, ...]) -> None:
    """Fetch every pool (or the named ones) with git and index its memories.

    Only contents never seen before are embedded. A pool that fails is reported and the others still sync.

    \b
    Example:
        mtlgit pool sync
        mtlgit pool sync platform
    """
    from mtlgit import pools
    from mtlgit.config import load_config
    from mtlgit.errors import MtlgitError
    from mtlgit.repo import find_repo

    repo = find_repo()
    specs = pools.parse_pools(load_config(repo.root))
    if names:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            raise MtlgitError(f"no pool named {', '.join(sorted(unknown))}: `mtlgit pool list` shows them")
        specs = [s for s in specs if s.name in names]
    if not specs:
        click.echo("No pools to sync: `mtlgit pool add NAME URL` adds one.")
        return
    failed = 0
    for spec in specs:
        failed += not _report(pools.sync(repo, spec, repo.root))
    if failed:
        raise click.exceptions.Exit(1)


def _report(status: dict[str, object]) -> bool:
    if status.get("ok"):
        click.echo(f"pool '{status['name']}': {status['memories']} memories at {str(status['commit'])[:10]}")
        return True
    click.echo(f"pool '{status['name']}': sync failed: {status['error']}", err=True)
    return False
