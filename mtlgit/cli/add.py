from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import split_words
from mtlgit.schema import FORMATS, OUTCOMES, SCOPES


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
    "--json",
    "json_arg",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[FILE|-]",
    help="Print the result as JSON. With FILE (or - for standard input): add the memory items of that JSON "
    "(see `mtlgit prompt extract`).",
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
        mtlgit add --json - < agent-answer.json
        mtlgit add -t "..." -d "..." -c "..." --cite src/parser.py:parse --cite src/io.py:10-24
    """
    from mtlgit.cli.drafts import HINT, draft_path, interactive, run_editor
    from mtlgit.errors import MtlgitError

    pool = open_pool()
    if json_arg:
        _add_json(pool, json_arg, force)
        return
    as_json = json_arg is not None
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
        from mtlgit.frontmatter import dump_field

        template = {
            "title": fields["title"],
            "description": description,
            "goal": goal if fmt == "workflow" else None,
            "format": fmt,
            "scope": scope,
            "domains": fields["domains"],
            "tags": fields["tags"],
            "outcome": outcome,
        }
        lines = ["---"]
        for key, value in template.items():
            if value is None and key == "goal":
                continue
            lines.extend(dump_field(key, value) if value not in (None, "") else [f"{key}: "])
        lines.append("---")
        draft = draft_path(pool.repo.state_dir, f"ADD_{os.getpid()}_{int(time.time())}.md")
        body = (fields["content"] or "").strip()
        draft.write_text("\n".join(lines) + "\n" + (body + "\n\n" if body else "") + HINT + "\n", encoding="utf-8")
        text = run_editor(draft)
        if not text.strip():
            raise MtlgitError("empty draft: nothing added")
        fields = _fields_from_text(text, str(draft), fields)
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
        kept = ""
        if draft is not None:
            kept = f"\nyour text is kept in {draft}: fix it there and run `mtlgit add --file {draft}`"
        raise MtlgitError(f"memory not added:\n{details}{kept}")
    if draft is not None:
        draft.unlink(missing_ok=True)
    if as_json:
        echo_json({**result.memory.to_json(), "warnings": result.warnings})
    else:
        click.echo(f"Added {result.memory.id} {result.memory.path}")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)


def _add_json(pool: Any, source: str, force: bool) -> None:
    """Add every item of a JSON answer; print one JSON report; exit 1 when any item was rejected."""
    from mtlgit.citations import add_items
    from mtlgit.errors import MtlgitError
    from mtlgit.extract import parse_items

    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise MtlgitError(f"cannot read {source}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise MtlgitError(f"{source} is not UTF-8 text") from None
    from mtlgit.ledger import record_extract_answer

    try:
        items = parse_items(text)
    except RecursionError:
        raise MtlgitError(f"{source}: the JSON nests too deeply to be read; give a list of memory objects") from None
    outcome = record_extract_answer(pool.repo, text)
    results = add_items(pool, items, force=force)
    added = [r for r in results if r.memory is not None]
    echo_json(
        {
            "added": len(added),
            "rejected": len(results) - len(added),
            "items": [r.to_json() for r in results],
            **({"outcome_recorded": outcome} if outcome else {}),
        }
    )
    if len(added) != len(results):
        raise click.exceptions.Exit(1)


def _fields_from_text(text: str, origin: str, defaults: dict[str, Any]) -> dict[str, Any]:
    from mtlgit import frontmatter
    from mtlgit.errors import MtlgitError
    from mtlgit.schema import KNOWN_KEYS

    try:
        doc = frontmatter.parse(text)
    except frontmatter.FrontMatterError as exc:
        raise MtlgitError(f"{origin}:{exc.line}: {exc.message}") from None
    meta = doc.meta
    fields = dict(defaults)
    for key in ("title", "description", "goal", "format", "scope", "outcome"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            fields[key] = value.strip()
    for key in ("domains", "tags"):
        value = meta.get(key)
        if isinstance(value, list):
            fields[key] = [str(v) for v in value]
        elif isinstance(value, str):
            fields[key] = split_words((value,))
    if isinstance(meta.get("source"), dict):
        fields["source"] = meta["source"]
    fields["content"] = doc.content or fields.get("content", "")
    extra = {k: v for k, v in meta.items() if k not in KNOWN_KEYS}
    if extra:
        fields["extra"] = extra
    return fields


def _cites(specs: tuple[str, ...]) -> list[dict[str, Any]]:
    from mtlgit.citations import parse_spec
    from mtlgit.errors import MtlgitError

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
