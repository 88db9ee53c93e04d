from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import split_words
from mtlgit.cli.paths import from_here
from mtlgit.errors import MtlgitError
from mtlgit.rules import FORMATS, OUTCOMES, SCOPES


@click.command()
@click.option("-t", "--title", help="One line stating the lesson.")
@click.option("-d", "--description", default="", help="One sentence: when the memory applies.")
@click.option("-c", "--content", help="The memory itself; '-' reads it from standard input.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="insight", show_default=True)
@click.option("--goal", default="", help="What a workflow achieves (format workflow).")
@click.option("--scope", type=click.Choice(SCOPES), help="Default: task-agnostic for insights and workflows.")
@click.option("--domain", "domains", multiple=True, help="Domain it was learned in, e.g. python (repeatable).")
@click.option("--tag", "tags", multiple=True, help="A tag, e.g. testing (repeatable, or comma-separated).")
@click.option(
    "--outcome",
    type=click.Choice(OUTCOMES),
    default="unknown",
    show_default=True,
    help="How the attempt it was learned from ended.",
)
@click.option("--source-task", help="Provenance: the task it was learned on.")
@click.option("--source-agent", help="Provenance: the agent that learned it.")
@click.option("--source-model", help="Provenance: the model behind the agent.")
@click.option("--source-commit", help="Provenance: the code commit it was learned at.")
@click.option("--source-path", "source_paths", multiple=True, help="Provenance: a code path it is about.")
@click.option(
    "--cite",
    "cites",
    multiple=True,
    metavar="PATH[:SYMBOL|:A-B]",
    help="Code the memory is about, checked at recall (repeatable; the commit defaults to HEAD).",
)
@click.option(
    "--file",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the fields and content from a Markdown file with front matter.",
)
@click.option("-e", "--edit", "use_editor", is_flag=True, help="Open $EDITOR on the memory before adding it.")
@click.option("--force", is_flag=True, help="Add even when a near-duplicate exists.")
@click.option(
    "--items",
    "items_from",
    metavar="FILE|-",
    help="Add the memory items of this JSON (- reads standard input): an agent's answer to `mtlgit prompt extract`.",
)
@click.option(
    "--json",
    "json_arg",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="",
    help="Print the result as JSON. (`--json FILE` for --items FILE still works in 0.x, with a deprecation note.)",
)
def add(
    title: str | None,
    description: str,
    content: str | None,
    fmt: str,
    goal: str,
    scope: str | None,
    domains: tuple[str, ...],
    tags: tuple[str, ...],
    outcome: str,
    source_task: str | None,
    source_agent: str | None,
    source_model: str | None,
    source_commit: str | None,
    source_paths: tuple[str, ...],
    cites: tuple[str, ...],
    from_file: Path | None,
    use_editor: bool,
    force: bool,
    items_from: str | None,
    json_arg: str | None,
) -> None:
    """Add a memory to the pool.

    Give the fields as options; the content comes from --content, from standard input (--content -),
    or, on a terminal, from $EDITOR with a template.

    \b
    Example:
        mtlgit add --title "Validate a fix with a self-contained test" \\
          --description "Before calling a fix done, run a minimal inline test." \\
          --content "Run a here-doc test covering the normal case, an edge case and the bug." \\
          --domain python --tag testing
        echo "Steps..." | mtlgit add -t "Bisect flaky tests" -d "When a test fails only sometimes." -c -
        mtlgit prompt extract --outcome failure   # give this to the agent, then:
        mtlgit add --items - < agent-answer.json
        mtlgit add -t "..." -d "..." -c "..." --cite src/parser.py:parse --cite src/io.py:10-24

    With --items, the exit code is 0 when every item was added (or the answer holds none: []), 1 when any
    item was rejected or the input is empty.
    """
    from mtlgit.cli.drafts import HINT, draft_path, interactive, run_editor

    if json_arg:
        if items_from:
            raise click.UsageError("give the items once: --items FILE (--json only asks for JSON output)")
        # `--json FILE` read items before --items existed: kept for the 0.x versions so scripts keep working.
        click.echo(f"mtlgit: `add --json {json_arg}` is deprecated: use `add --items {json_arg} --json`", err=True)
        items_from = json_arg
    as_json = json_arg is not None
    pool = open_pool()
    pool.check_set_up()  # before $EDITOR opens: what the user types there would wait for `mtlgit init`
    if items_from:
        raise click.exceptions.Exit(_add_items(pool, items_from, force, as_json))
    if content == "-":
        content = sys.stdin.read()
    fields: dict[str, Any] = {
        "title": title or "",
        "description": description,
        "content": content or "",
        "format": fmt,
        "goal": goal,
        "scope": scope,
        "domains": split_words(domains),
        "tags": split_words(tags),
        "outcome": outcome,
        "source": {
            "task": source_task,
            "agent": source_agent,
            "model": source_model,
            "commit": source_commit,
            "paths": list(source_paths),
            "cites": _cites(cites),
        },
    }
    draft: Path | None = None
    if from_file is not None:
        fields = _fields_from_text(from_file.read_text(encoding="utf-8"), str(from_file), fields)
    elif use_editor or not (fields["title"] and fields["content"].strip()):
        if not use_editor and not interactive():
            missing = [name for name in ("title", "content") if not str(fields[name]).strip()]
            raise MtlgitError(
                f"missing --{' and --'.join(missing)}: give them as options, pass the content with "
                "--content - on standard input, or run on a terminal to use $EDITOR"
            )
        draft = draft_path(pool.repo.state_dir, f"ADD_{os.getpid()}_{int(time.time())}.md")
        draft.write_text(_template(fields) + HINT + "\n", encoding="utf-8")
        text = run_editor(draft)
        if not text.strip():
            draft.unlink()
            raise MtlgitError("empty draft: nothing added")
        try:
            fields = _fields_from_text(text, str(draft), fields)
        except MtlgitError as exc:
            raise MtlgitError(f"{exc}\n{_kept(draft)}") from None
    from mtlgit.citations import with_commit
    from mtlgit.intake import add_one

    fields["source"] = with_commit(pool.root, fields.get("source") or {})
    wrong = _cite_problems(pool, fields["source"])
    if wrong:
        kept = f"\nyour text is kept in {draft}: fix it there and run `mtlgit add --file {draft}`" if draft else ""
        raise MtlgitError(f"memory not added: {'; '.join(wrong)}{kept}")
    result = add_one(pool, fields, force=force)
    if result.memory is None:
        details = "\n".join(f"  {reason}" for reason in result.reasons)
        raise MtlgitError(f"memory not added:\n{details}" + (f"\n{_kept(draft)}" if draft else ""))
    if draft is not None:
        draft.unlink(missing_ok=True)
    if as_json:
        echo_json({**result.memory.to_json(), "warnings": result.warnings})
    else:
        click.echo(f"Added {result.memory.id} {from_here(pool.root, result.memory.path)}")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)


def _template(fields: dict[str, Any]) -> str:
    """The draft $EDITOR opens: the options given so far as front matter, then the content."""
    from mtlgit.frontmatter import dump_field

    shown = {
        key: fields[key]
        for key in ("title", "description", "goal", "format", "scope", "domains", "tags", "outcome")
        if key != "goal" or fields["format"] == "workflow"
    }
    lines = ["---"]
    for key, value in shown.items():
        lines.extend(dump_field(key, value) if value not in (None, "") else [f"{key}: "])
    lines.append("---")
    body = str(fields["content"] or "").strip()
    return "\n".join(lines) + "\n" + (body + "\n\n" if body else "")


def _kept(draft: Path) -> str:
    return f"your text is kept in {draft}: fix it there and run `mtlgit add --file {draft}`"


def _add_items(pool: Any, source: str, force: bool, as_json: bool) -> int:
    """Add every item of a JSON answer, report each, and return the exit code of a batch (README, "Exit codes"):
    0 when every item was added or the answer holds none, 1 when any was rejected.

    :raises MtlgitError: when the input is empty or is not JSON.
    """
    from mtlgit.extract import parse_items
    from mtlgit.intake import add_items
    from mtlgit.ledger import record_extract_answer

    name = "standard input" if source == "-" else source
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise MtlgitError(f"cannot read {source}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise MtlgitError(f"{source} is not UTF-8 text") from None
    if not text.strip():
        raise MtlgitError(
            f"{name} is empty: nothing to add. Give the JSON answer to `mtlgit prompt extract` "
            "(an agent that learned nothing answers [])"
        )
    try:
        items = parse_items(text)
    except RecursionError:
        raise MtlgitError(f"{name}: the JSON nests too deeply to be read; give a list of memory objects") from None
    outcome = record_extract_answer(pool.repo, text)
    results = add_items(pool, items, force=force)
    added = [r for r in results if r.memory is not None]
    rejected = len(results) - len(added)
    if as_json:
        echo_json(
            {
                "added": len(added),
                "rejected": rejected,
                "items": [r.to_json() for r in results],
                **({"outcome_recorded": outcome} if outcome else {}),
            }
        )
    else:
        for r in results:
            if r.memory is not None:
                click.echo(f"added {r.memory.id} {from_here(pool.root, r.memory.path)}")
                for warning in r.warnings:
                    click.echo(f"  warning: {warning}", err=True)
            else:
                title = f' "{r.title}"' if r.title else ""
                click.echo(f"rejected item {r.index}{title}: " + "; ".join(r.reasons), err=True)
        summary = f"added {len(added)}, rejected {rejected}" if results else "nothing to add: the answer holds no item"
        click.echo(summary + (f"; outcome recorded as {outcome}" if outcome else ""))
    return 1 if rejected else 0


def _fields_from_text(text: str, origin: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The fields of a Markdown file with front matter, over ``defaults`` (the options given).

    :raises MtlgitError: naming the file and line of each problem.
    """
    from mtlgit import frontmatter
    from mtlgit.intake import fields_from_mapping
    from mtlgit.memory import key_line

    try:
        doc = frontmatter.parse(text)
    except frontmatter.FrontMatterError as exc:
        raise MtlgitError(f"{origin}:{exc.line}: {exc.message}") from None
    fields, problems = fields_from_mapping(
        {**doc.meta, "content": doc.content}, defaults, where=lambda key: f"{origin}:{key_line(doc, key)}: "
    )
    if problems:
        raise MtlgitError("memory not added:\n" + "\n".join(f"  {problem}" for problem in problems))
    return fields


def _cites(specs: tuple[str, ...]) -> list[dict[str, Any]]:
    from mtlgit.citations import parse_spec

    out = []
    for spec in specs:
        try:
            out.append(parse_spec(spec).to_json())
        except ValueError as exc:
            raise MtlgitError(f"--cite {spec}: {exc}") from None
    return out


def _cite_problems(pool: Any, source: dict[str, Any]) -> list[str]:
    """What is wrong with citations that do not hold at their commit (lint would report them as errors)."""
    from mtlgit.citations import verify

    return [problem for _position, problem in verify(pool.root, [{"source": source}]).get(0, [])]
