"""``mtlgit feedback`` (how a task ended, and which recalled items helped), ``mtlgit ledger sync`` and the
usefulness table of ``mtlgit stats --usefulness``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.errors import MtlgitError


@click.command()
@click.argument("receipt", required=False)
@click.option(
    "--outcome",
    type=click.Choice(["success", "failure", "unknown"]),
    help="How the task ended (required with RECEIPT; 'unknown' records only which items were used).",
)
@click.option("--used", "used", multiple=True, metavar="ID", help="An item used: its number N or memory id.")
@click.option("--hurt", "hurt", multiple=True, metavar="ID", help="An item that misled (repeatable).")
@click.option("--note", help="A short note (scanned: a secret is refused).")
@click.option(
    "--transcript",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Read the receipts and the "Using Memory Item N" lines of an agent transcript (JSON lines).',
)
@click.option(
    "--hook-input",
    is_flag=True,
    help="Read a Claude Code hook's JSON (SessionEnd, Stop) from standard input and use its transcript.",
)
@json_option
def feedback(
    receipt: str | None,
    outcome: str | None,
    used: tuple[str, ...],
    hurt: tuple[str, ...],
    note: str | None,
    transcript: Path | None,
    hook_input: bool,
    as_json: bool,
) -> None:
    """Record how the task of a recall ended and which recalled items were used.

    RECEIPT is the rc-... id printed after the recalled items (`recall --prompt`, `--json`, MCP).
    Items are named by their number (Memory Item N) or memory id. The outcomes feed
    `mtlgit stats --usefulness`, `lint` and `review`.

    \b
    Example:
        mtlgit feedback rc-01JF3Q2V6R3J8Z6TT4M0S3W4K9 --outcome success --used 2
        mtlgit feedback rc-01JF3Q2V --outcome failure --hurt 1 --note "advice did not fit this project"
        mtlgit feedback --transcript session.jsonl --outcome success
    """
    from mtlgit import ledger
    from mtlgit.repo import find_repo

    repo = find_repo()
    if hook_input or transcript is not None:
        if receipt or used or hurt or note:
            raise click.UsageError("with --transcript or --hook-input, the transcript names receipts and items")
        lines = _transcript_lines(transcript)
        events = ledger.record_transcript(repo, lines, outcome or "unknown")
        if as_json:
            echo_json({"recorded": [_short(e) for e in events]})
        elif not hook_input or events:
            click.echo(f"recorded {len(events)} outcome(s) from the transcript")
        return
    if not receipt:
        raise click.UsageError("give the RECEIPT id (rc-...) printed after the recalled items")
    if outcome is None:
        raise click.UsageError("give --outcome success or --outcome failure")
    event = ledger.record_outcome(repo, receipt, outcome, used, hurt, note)
    if as_json:
        echo_json(_short(event))
    else:
        click.echo(f"recorded {outcome} for {event['receipt']}: {len(event['used'])} used, {len(event['hurt'])} hurt")


def _short(event: dict[str, Any]) -> dict[str, Any]:
    return {key: event[key] for key in ("id", "receipt", "outcome", "used", "hurt")}


def _transcript_lines(transcript: Path | None) -> list[str]:
    import json

    if transcript is None:
        try:
            data = json.loads(sys.stdin.read())
        except json.JSONDecodeError as exc:
            raise MtlgitError(f"--hook-input: standard input is not JSON ({exc.msg})") from None
        path = data.get("transcript_path") if isinstance(data, dict) else None
        if not isinstance(path, str):
            raise MtlgitError("--hook-input: the JSON has no 'transcript_path' string")
        transcript = Path(path).expanduser()
    try:
        return transcript.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise MtlgitError(f"cannot read the transcript {transcript}: {exc.strerror}") from None


@click.group()
def ledger() -> None:
    """The outcome ledger: private to this clone until synced.

    \b
    Example:
        mtlgit ledger sync            # share it through origin's refs/mtlgit/ledger
    """


@ledger.command()
@click.argument("remote", default="origin")
@json_option
def sync(remote: str, as_json: bool) -> None:
    """Share the ledger with a remote: fetch its ledger, add its lines here, push the union.

    Each clone writes only its own files, so syncs never conflict; run it from any clone, in any order.

    \b
    Example:
        mtlgit ledger sync
        mtlgit ledger sync upstream
    """
    from mtlgit.ledger_git import sync as run_sync
    from mtlgit.repo import find_repo

    report = run_sync(find_repo(), remote)
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo(f"ledger synced with {remote}: {report.received} line(s) received, {report.sent} sent")
        if report.refused:
            click.echo(
                f"{report.refused} line(s) of {remote}'s ledger refused: not ledger events, or holding a secret",
                err=True,
            )


def print_usefulness(pool: Any, as_json: bool) -> None:
    """The usefulness table of ``mtlgit stats --usefulness``."""
    from mtlgit import ledger
    from mtlgit.receipts import settings

    known = ledger.figures(pool.repo)
    titles = {m.id: m.title for m in pool.load_indexed().memories}
    rows = sorted(known.memories.values(), key=lambda u: (-u.recalled, -u.used, u.memory_id))
    # What recall adds for each, in standard deviations of the fused score.
    weight = settings(pool.repo).feedback_weight
    priors = ledger.prior_values(known, [u.memory_id for u in rows], weight)
    if as_json:
        echo_json(
            {
                "receipts": known.receipts,
                "outcomes": known.outcomes,
                "unreadable_lines": known.unreadable_lines,
                "min_evidence": ledger.MIN_EVIDENCE,
                "feedback_weight": weight,
                "memories": [
                    {**u.to_json(), "prior": round(float(prior), 4), "title": titles.get(u.memory_id)}
                    for u, prior in zip(rows, priors, strict=True)
                ],
            }
        )
        return
    click.echo(f"{known.receipts} recall(s) recorded, {known.outcomes} with an outcome")
    if not rows:
        click.echo("no evidence yet: record outcomes with `mtlgit feedback RECEIPT --outcome ...`")
        return
    for u, prior in zip(rows, priors, strict=True):
        title = titles.get(u.memory_id, "(not in the pool)")
        flag = "  ! evidence of harm" if u.harmful else ""
        click.echo(f"{u.memory_id[:10]}  {title[:60]}{flag}")
        click.echo(f"            {ledger.describe(u)}; recall prior {prior:+.2f}")
    click.echo(
        f'"too little evidence": fewer than {ledger.MIN_EVIDENCE} outcomes when used or when not used; '
        "intervals are 95% Wilson intervals; the recall prior is in standard deviations of the fused score "
        "(recall.feedback_weight bounds it)"
    )
