"""Sharing the outcome ledger through git, with nothing to merge by hand.

The shared ledger is the ref ``refs/mtlgit/ledger``: a commit whose tree holds ``receipts/<clone>.jsonl`` and
``outcomes/<clone>.jsonl`` for every clone that synced. ``sync`` fetches the remote's ref, adds the lines this
clone lacks to its files (a union: files only grow), commits every file on top of the fetched commit and
pushes. Each clone writes only its own files, so two syncs never change the same file: git itself merges any
two of these commits without a conflict, and a push that lost a race is retried on top of the winner.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mtlgit import git
from mtlgit.errors import MtlgitError
from mtlgit.gitobjects import read_blobs
from mtlgit.ledger import event_files, ledger_dir, refresh_prior
from mtlgit.receipts import check_event
from mtlgit.repo import Repo
from mtlgit.secrets import find_secrets

REF = "refs/mtlgit/ledger"
FETCHED = "refs/mtlgit/ledger-fetched"
KINDS = ("receipts", "outcomes")
ATTEMPTS = 5
# Commits of the shared ledger name no person: the files are pseudonymous, the commits stay so.
_IDENTITY = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "mtlgit ledger"), ("EMAIL", "ledger@mtlgit.invalid"))
}


@dataclass
class SyncReport:
    remote: str
    received: int = 0  # lines of other clones (or lost lines of this one) added here
    sent: int = 0  # lines the remote did not have
    refused: int = 0  # lines of the remote that are not ledger events, or hold a secret: not taken in
    commit: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "remote": self.remote,
            "received": self.received,
            "sent": self.sent,
            "refused": self.refused,
            "commit": self.commit,
        }


def sync(repo: Repo, remote: str = "origin") -> SyncReport:
    """Fetch the remote's shared ledger, take in its lines, and push the union back.

    :raises MtlgitError: when git cannot reach the remote (git's own words), or other clones kept winning the
        race to push.
    """
    if not remote or remote.startswith("-"):
        raise MtlgitError(f"'{remote}' is not a remote name or URL")
    for _attempt in range(ATTEMPTS):
        report = SyncReport(remote)
        fetched = _fetch(repo, remote)
        remote_lines = _absorb(repo, fetched, report) if fetched else {}
        tree = _write_tree(repo)
        if report.received:
            refresh_prior(repo)
        if fetched and tree == repo.git("rev-parse", f"{fetched}^{{tree}}").strip():
            repo.git("update-ref", REF, fetched)
            report.commit = fetched
            return report
        report.sent = _count_new(repo, remote_lines)
        parents = [fetched] if fetched else []
        local = repo.git("rev-parse", "--verify", "--quiet", REF, check=False).strip()
        if local and local != fetched and not _is_ancestor(repo, local, fetched):
            parents.append(local)
        args = ["commit-tree", tree, "-m", "mtlgit ledger sync"]
        for parent in parents:
            args += ["-p", parent]
        commit = _commit_tree(repo, args)
        repo.git("update-ref", REF, commit)
        if _push(repo, remote, commit):
            report.commit = commit
            return report
    raise MtlgitError(f"other clones kept pushing to {remote}'s ledger meanwhile: run `mtlgit ledger sync` again")


def _commit_tree(repo: Repo, args: list[str]) -> str:
    return git.run(repo.root, *args, env=_IDENTITY).text.strip()


def _fetch(repo: Repo, remote: str) -> str | None:
    try:
        repo.git("fetch", "--quiet", "--no-tags", remote, f"+{REF}:{FETCHED}")
    except git.GitError as exc:
        if "couldn't find remote ref" in exc.stderr:
            return None
        raise MtlgitError(f"{exc} (is '{remote}' a remote of this repository? `git remote -v`)") from None
    return repo.git("rev-parse", FETCHED).strip()


def _is_ancestor(repo: Repo, commit: str, of: str | None) -> bool:
    if of is None:
        return False
    try:
        repo.git("merge-base", "--is-ancestor", commit, of)
    except MtlgitError:
        return False
    return True


_PATH = re.compile(r"^(receipts|outcomes)/([0-9a-f]{16})\.jsonl$")


def _absorb(repo: Repo, commit: str, report: SyncReport) -> dict[str, set[bytes]]:
    """Append to the local files the lines of ``commit``'s files they lack; return the remote's lines."""
    entries = []
    for line in repo.git("ls-tree", "-r", "-z", commit).split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        match = _PATH.match(path)
        if match and meta.split()[1] == "blob":
            entries.append((path, meta.split()[2]))
    contents = read_blobs(repo, [blob for _path, blob in entries])
    remote_lines: dict[str, set[bytes]] = {}
    for path, blob in entries:
        lines = [line for line in contents[blob].split(b"\n") if line.strip()]
        remote_lines[path] = set(lines)
        target = ledger_dir(repo) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        have = set(target.read_bytes().split(b"\n")) if target.exists() else set()
        missing = [line for line in dict.fromkeys(lines) if line not in have]
        accepted = [line for line in missing if _acceptable(line)]
        report.refused += len(missing) - len(accepted)
        missing = accepted
        if missing:
            with open(target, "ab") as handle:
                handle.write(b"".join(line + b"\n" for line in missing))
            report.received += len(missing)
    return remote_lines


# Fields whose values have a fixed shape, checked here instead of scanned as text.
_SHAPED = {"v", "id", "at", "receipt", "commit", "query_sha", "tool", "outcome", "memories", "blobs", "used", "hurt"}


def _acceptable(line: bytes) -> bool:
    """Whether a line received from the remote may join this clone's ledger: a JSON event whose ids, hashes
    and times have their shapes and whose free text holds no secret. The shared ref takes whatever a clone
    pushes (a hand-edited file, another tool's); this clone would push it on."""
    try:
        event = json.loads(line)
    except ValueError:
        return False
    if not isinstance(event, dict) or not all(
        isinstance(event.get(key), str) and _SHAPE.fullmatch(event[key]) for key in ("id", "at")
    ):
        return False
    try:
        check_event(event)
        lists = [event.get(key) or [] for key in ("used", "hurt")]
        if not all(isinstance(ids, list) and set(ids) <= set(event.get("memories") or []) for ids in lists):
            return False
    except (MtlgitError, TypeError, AttributeError):
        return False
    for key in ("receipt", "query_sha", "tool", "outcome"):
        if key in event and not (isinstance(event[key], str) and _SHAPE.fullmatch(event[key])):
            return False
    free = json.dumps({key: value for key, value in event.items() if key not in _SHAPED}, ensure_ascii=False)
    return not find_secrets(free)


# ids (rc-/oc- and a ULID), times, hashes and names: short, of letters, digits and a little punctuation.
_SHAPE = re.compile(r"[0-9A-Za-z:.\-]{1,40}")


def _count_new(repo: Repo, remote_lines: dict[str, set[bytes]]) -> int:
    sent = 0
    for kind in KINDS:
        for path in event_files(repo, kind):
            theirs = remote_lines.get(f"{kind}/{path.name}", set())
            sent += sum(1 for line in path.read_bytes().split(b"\n") if line.strip() and line not in theirs)
    return sent


def _write_tree(repo: Repo) -> str:
    subtrees = []
    for kind in KINDS:
        files = event_files(repo, kind)
        if not files:
            continue
        blobs = repo.git("hash-object", "-w", "--", *(str(p) for p in files)).split()
        listing = "".join(f"100644 blob {blob}\t{p.name}\n" for blob, p in zip(blobs, files, strict=True))
        subtrees.append(f"040000 tree {repo.git('mktree', input=listing.encode()).strip()}\t{kind}\n")
    return repo.git("mktree", input="".join(subtrees).encode()).strip()


def _push(repo: Repo, remote: str, commit: str) -> bool:
    """Push ``commit`` as the remote's ledger; False when the remote moved on since the fetch (retry)."""
    try:
        repo.git("push", "--quiet", remote, f"{commit}:{REF}")
    except git.GitError as exc:
        text = exc.stderr
        if any(word in text for word in ("rejected", "fetch first", "non-fast-forward", "cannot lock ref")):
            return False
        raise
    return True
