"""Whether a memory says when it applies: the rule behind lint's ``no-when`` warning.

Recall matches a memory against the text an agent receives -- an issue with a traceback, a shell task, a
problem statement, a ticket -- so a lesson is found only when its memory names the situations it applies
to. The lesson (title and content) stays general; the description carries the situations, in the words a
task, an error message or a log would use. What lint can check is the form, so the rule for insights and
workflows (the formats meant to transfer) is:

1. the memory has a description;
2. the description says when: it holds a situation word (``when``, ``if``, ``before``, ``after``,
   ``while``, ``during``...) or a label such as ``Symptoms:``;
3. it names situations beyond the title: at least :data:`MIN_NEW_TERMS` index terms (stemmed, stop words
   removed, as recall sees them) that the title does not already contain.

Summaries and trajectories record one task and are left alone.
"""

from __future__ import annotations

import re

from mtlgit.analysis import analyze

CODE = "no-when"
MIN_NEW_TERMS = 5
FORMATS = frozenset({"insight", "workflow"})

_SITUATION = re.compile(
    r"\b(?:when|whenever|if|before|after|while|during|once|until|upon|unless)\b"
    r"|\b(?:symptoms?|signs?|situations?|triggers?|applies|seen as|shows up as)\s*:",
    re.IGNORECASE,
)
_HOW = (
    "start it 'When ...' and name the situations in the words a task, an error message or a log would use: "
    "symptoms, error and exception names, kinds of task, languages and tools"
)


def when_problems(fmt: str, title: str, description: str) -> list[tuple[str, str]]:
    """The ways this memory fails to say when it applies, as (front-matter key, message); empty when it does."""
    if fmt not in FORMATS:
        return []
    text = description.strip()
    if not text:
        return [("title", f"the memory does not say when it applies: add a description, {_HOW}")]
    if not _SITUATION.search(text):
        return [("description", f"the description does not say when the memory applies: {_HOW}")]
    new = set(analyze(text)) - set(analyze(title))
    if len(new) < MIN_NEW_TERMS:
        return [
            (
                "description",
                f"the description names {len(new)} situation term(s) the title lacks, fewer than {MIN_NEW_TERMS}: "
                f"{_HOW}",
            )
        ]
    return []
