from __future__ import annotations

import click

from mtlgit.cli.main import echo_json, open_pool
from mtlgit.cli.options import json_option
from mtlgit.cli.paths import from_here
from mtlgit.errors import InvalidMemoryError, MtlgitError


@click.command()
@click.argument("ref", metavar="ID")
@json_option
def edit(ref: str, as_json: bool) -> None:
    """Edit a memory in $EDITOR; the result is validated before it replaces the file.

    ID is an id, an id prefix or the file's path. Nothing is lost: if the edited text does not validate, or the
    editor fails, it stays in a draft file whose path is printed, and the next `mtlgit edit ID` opens that
    draft again; it replaces the memory once it validates (closed unchanged too), and is refused if the memory
    changed since the draft was made. Delete the draft to start over from the memory.

    \b
    Example:
        EDITOR=nano mtlgit edit 01JDQ2V6
    """
    from mtlgit import frontmatter
    from mtlgit.cli.drafts import draft_path, interactive, run_editor

    pool = open_pool()
    memory = pool.get(ref)
    original = (pool.root / memory.path).read_text(encoding="utf-8")
    here = from_here(pool.root, memory.path)
    draft = draft_path(pool.repo.state_dir, f"EDIT_{memory.id}.md")
    # The text the draft started from: a kept draft must not silently undo a change made to the file since.
    base = draft.with_suffix(".base")
    if draft.is_file() and draft.read_text(encoding="utf-8") != original:
        if base.is_file() and base.read_text(encoding="utf-8") != original:
            raise MtlgitError(
                f"{here} changed since your draft {draft} was made: merge the two by hand "
                f"(`diff {base} {here}` shows the change), or delete the draft to start over"
            )
        click.echo(
            f"Opening the draft kept from an earlier edit: {draft} (delete it to start over from {here})",
            err=True,
        )
    else:
        draft.write_text(original, encoding="utf-8")
    base.write_text(original, encoding="utf-8")
    from mtlgit.staleness import orphan_note

    orphaned = orphan_note(pool.root, pool.repo.worktree_state_dir, memory.to_json())
    if orphaned:
        click.echo(f"note: {orphaned}: update source.cites, or retire it", err=True)
    while True:
        text = run_editor(draft)
        if text == original:
            # The draft says what the file says: deleting it loses nothing.
            draft.unlink(missing_ok=True)
            base.unlink(missing_ok=True)
            click.echo(f"No change to {here}")
            return
        try:
            doc = frontmatter.parse(text)
            if str(doc.meta.get("id", "")).strip() != memory.id:
                raise MtlgitError(f"the id changed: it must stay {memory.id}")
            updated = pool.replace_text(memory, text)
            break
        except (InvalidMemoryError, MtlgitError, frontmatter.FrontMatterError) as exc:
            problems = getattr(exc, "problems", [])
            lines = [f"  {p.message}" for p in problems if p.is_error] or [f"  {exc}"]
            click.echo("The edited memory has errors:\n" + "\n".join(lines), err=True)
            if interactive() and click.confirm("Edit again?", default=True, err=True):
                continue
            raise MtlgitError(
                f"{here} was not changed; your edit is kept in {draft}: `mtlgit edit {memory.id}` opens it again"
            ) from None
    draft.unlink(missing_ok=True)
    base.unlink(missing_ok=True)
    if as_json:
        echo_json(updated.to_json())
    else:
        click.echo(f"Updated {updated.id} {from_here(pool.root, updated.path)}")
