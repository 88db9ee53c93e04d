from __future__ import annotations

import os
import re
from pathlib import Path

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.errors import MtlgitError
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
@click.option("--ref", default="", help="Branch or tag to read the memories from (default: the remote's HEAD).")
@click.option("--folder", default="memories", show_default=True, help="The pool's memories folder.")
@click.option("--domain", default="", help="A domain label for all of the pool's memories.")
@click.option(
    "--trust",
    type=click.Choice(["reviewed", "untrusted"]),
    default="untrusted",
    show_default=True,
    help="Whether the pool's memories passed review; untrusted ones are flagged to agents.",
)
@click.option("--no-sync", is_flag=True, help="Only add it to .mtlgit.yaml, without fetching it.")
def add(name: str, url: str, ref: str, folder: str, domain: str, trust: str, no_sync: bool) -> None:
    """Fetch a pool and add it to .mtlgit.yaml.

    URL is anything git can fetch: https, ssh, file://, or a local path (from the current directory, written
    relative to the repository's root, as .mtlgit.yaml reads it). Credentials are git's own business.
    A pool that cannot be fetched is not added (exit 1); --no-sync adds it without fetching.

    \b
    Example:
        mtlgit pool add frontend ../frontend-app --domain frontend
        mtlgit pool add platform https://git.example.com/platform.git --ref reviewed
    """
    from mtlgit import pools
    from mtlgit.config import load_config
    from mtlgit.repo import find_repo

    repo = find_repo()
    if not is_pool_name(name):
        raise click.UsageError(f"pool name {name!r}: use lower-case letters, digits, '-' or '_' (not 'local')")
    url = _from_root(repo.root, url)
    spec = pools.PoolSpec(name, url, ref.strip(), folder.strip("/"), domain, trust)
    pools.check_spec(spec, f"pool '{name}'")
    if name in {s.name for s in pools.parse_pools(load_config(repo.root))}:
        raise MtlgitError(f"a pool named '{name}' already exists: `mtlgit pool set {name}` changes it")
    if not no_sync:
        status = pools.sync_or_restore(repo, spec, repo.root)
        if not status.get("ok"):
            raise MtlgitError(
                f"pool '{name}' not added: {status['error']}; check the URL and --ref (--no-sync adds it unfetched)"
            )
    try:
        pools.add_to_config(repo.root, spec)
    except MtlgitError:
        pools.forget(repo, name)
        raise
    note = _url_note(repo.root, url)
    click.echo(f"Added pool '{name}' to .mtlgit.yaml" + (f": url {url}{note}" if note else ""))
    if not no_sync:
        _report(status)


@pool.command("set")
@click.argument("name")
@click.option("--url", help="A new address: a git URL or a local path.")
@click.option("--ref", help="A new branch or tag ('' for the remote's default branch).")
@click.option("--folder", help="A new memories folder.")
@click.option("--domain", help="A new domain label ('' for none).")
@click.option("--trust", type=click.Choice(["reviewed", "untrusted"]), help="Whether its memories passed review.")
@click.option("--no-sync", is_flag=True, help="Only change .mtlgit.yaml, without fetching.")
def set_(
    name: str,
    url: str | None,
    ref: str | None,
    folder: str | None,
    domain: str | None,
    trust: str | None,
    no_sync: bool,
) -> None:
    """Change a pool's URL, ref, folder, domain or trust in .mtlgit.yaml (and sync it).

    The pool is fetched with the new settings first: when that fails, nothing changes (exit 1).

    \b
    Example:
        mtlgit pool set platform --ref release
        mtlgit pool set platform --url git@git.example.com:platform/memories.git
    """
    from mtlgit import pools
    from mtlgit.config import load_config
    from mtlgit.repo import find_repo

    repo = find_repo()
    if url is not None:
        url = _from_root(repo.root, url.strip())
    given = {"url": url, "ref": ref, "folder": folder, "domain": domain, "trust": trust}
    values = {
        key: value.strip().strip("/") if key == "folder" else value.strip()
        for key, value in given.items()
        if value is not None
    }
    if not values:
        raise click.UsageError("give what to change: --url, --ref, --folder, --domain or --trust")
    old = next((s for s in pools.parse_pools(load_config(repo.root)) if s.name == name), None)
    if old is None:
        raise MtlgitError(f"no pool named '{name}' in .mtlgit.yaml: `mtlgit pool list` shows them")
    spec = pools.PoolSpec(**{**old.__dict__, **values})
    pools.check_spec(spec, f"pool '{name}'")
    if not no_sync:
        status = pools.sync_or_restore(repo, spec, repo.root)
        if not status.get("ok"):
            raise MtlgitError(f"pool '{name}' not changed: {status['error']}")
    pools.change_in_config(repo.root, name, values)
    click.echo(
        f"Changed pool '{name}': "
        + ", ".join(f"{k} {v or '(default)'}" for k, v in values.items())
        + _url_note(repo.root, values.get("url"))
    )
    if no_sync:
        click.echo(f"Recall uses its last sync until `mtlgit pool sync {name}`")
    else:
        _report(status)


# A URL git fetches as it is (a scheme, or user@host:path): anything else is a local path, as mtlgit.pools reads it.
_REMOTE = re.compile(r"^[\w+.-]+://|^[^/]+@[^/]+:")


def _from_root(root: Path, url: str) -> str:
    """A local path typed in a subfolder (``../team.git``) is meant from there, like every path argument; the
    configuration reads a relative path from the repository's root, so it is rewritten relative to the root.
    URLs, absolute paths and paths that do not exist from here are kept as given."""
    if _REMOTE.match(url) or os.path.isabs(url) or not os.path.exists(url):
        return url
    return os.path.relpath(os.path.abspath(url), root)


def _url_note(root: Path, url: str | None) -> str:
    """How a relative local path is read, said since it is written as the configuration reads it."""
    if url is None or _REMOTE.match(url) or os.path.isabs(url) or not (root / url).exists():
        return ""
    return " (a local path, relative to the repository's root)"


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
            f"{row['name']}{domain} ({row['trust']}): {row['url']} @ {row['ref'] or 'HEAD'}/{row['folder']} -- "
            f"{state}, synced {when}{error}"
        )


@pool.command("sync")
@click.argument("names", nargs=-1)
@json_option
def sync(names: tuple[str, ...], as_json: bool) -> None:
    """Fetch every pool (or the named ones) with git and index its memories.

    Only contents never seen before are embedded. A pool that fails is reported and the others still sync
    (exit 1). --json prints one object a pool, as `pool list --json` does: its settings and its new status
    (ok, memories, commit, unreadable, unreadable_files, and error when it failed; a failed pool keeps the
    memories and commit of its last good sync).

    \b
    Example:
        mtlgit pool sync
        mtlgit pool sync platform --json
    """
    from mtlgit import pools
    from mtlgit.config import load_config
    from mtlgit.repo import find_repo

    repo = find_repo()
    specs = pools.parse_pools(load_config(repo.root))
    if names:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            raise MtlgitError(f"no pool named {', '.join(sorted(unknown))}: `mtlgit pool list` shows them")
        specs = [s for s in specs if s.name in names]
    if not specs and not as_json:
        click.echo("No pools to sync: `mtlgit pool add NAME URL` adds one.")
        return
    failed = 0
    rows = []
    for spec in specs:
        status = pools.sync(repo, spec, repo.root)
        rows.append({**spec.__dict__, "status": status})
        failed += not _report(status, quiet=as_json)
    if as_json:
        echo_json(rows)
    if failed:
        raise click.exceptions.Exit(1)


def _report(status: dict[str, object], quiet: bool = False) -> bool:
    """Say how a sync went (a success on stdout unless ``quiet``, a failure on stderr); whether it succeeded."""
    if status.get("ok"):
        if not quiet:
            click.echo(f"pool '{status['name']}': {status['memories']} memories at {str(status['commit'])[:10]}")
        return True
    click.echo(f"pool '{status['name']}': sync failed: {status['error']}", err=True)
    return False
