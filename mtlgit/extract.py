"""Turning a finished attempt into memories: the instructions an agent follows, and reading its JSON answer.

The instructions follow Memory Transfer Learning: what transfers across tasks is abstract meta-knowledge
(how to work, verify, avoid anti-patterns, validate input, respect an API or a harness, adapt to the
environment), so the agent is asked for general lessons with no file names, strings or queries of its own
task; from a failure, for the lesson that would have prevented it. A lesson is only used if recall finds
it from the next task's text, so the description names the situations where it applies in the words tasks,
error messages and logs use (docs/format.md, "Saying when a memory applies").
"""

from __future__ import annotations

import json
import re
from typing import Any

from mtlgit.errors import MtlgitError

CATEGORIES = (
    "workflow discipline (order of work, small steps, checking before moving on)",
    "test-driven verification (reproduce first, prove the fix, run the nearest tests)",
    "anti-pattern avoidance (what looked like progress but was not)",
    "input validation (edge cases, types, encodings, empty and huge inputs)",
    "API compliance (the real signature and version, documented behaviour)",
    "interaction protocol (the exact answer format and rules of the harness or user)",
    "environment adaptation (missing tools, no network, read-only paths, other OS or shell)",
    "file and syntax management (safe edits, quoting, here-docs, indentation)",
    "repository exploration (finding the right place before editing)",
    "algorithmic strategy (only when the idea is reusable beyond this problem)",
)

WHEN_RULE = (
    "The `description` says when the item applies, so that another agent finds it from its task's text: start "
    "with 'When ...', name the general situation, then list the concrete ways a task meets it, in the words an "
    "issue, a task statement, an error message or a log would use: symptoms, error and exception names and "
    "messages, kinds of task, languages, tools and commands, across several languages and tools, not only "
    "this task's. One or two sentences, under 400 characters."
)

SHARED_WORDS = (
    " The description may name error types, messages, tools and kinds of files that many tasks share "
    "(`TypeError`, 'permission denied', a Makefile, pytest): they are how the next task will describe the "
    "situation."
)

FORMAT_RULES = {
    "insight": (
        "Each item is an insight: a `title` that states the lesson in one line; a `description` saying when it "
        "applies (below); `content`, 1-3 sentences saying what to do and why, in general terms."
    ),
    "workflow": (
        "Each item is a workflow: a `title`; a `goal` (what the workflow achieves); a `description` saying when "
        "to use it (below); `content`, numbered steps (`1. ...`), each a general action, not a command of this "
        "task."
    ),
    "summary": (
        "Each item is a summary: a `title`; `content` with a `## Task` section (the kind of task, in general "
        "terms) and an `## Experience` section (what worked, what did not, what to do next time)."
    ),
}

OUTCOME_RULES = {
    "success": (
        "The attempt SUCCEEDED. Extract what made it work and would help on a different task: the moves you "
        "would make again, the checks that caught problems early."
    ),
    "failure": (
        "The attempt FAILED. Find the root cause, then extract the lesson that would have prevented the "
        "failure: what you should have checked, noticed or done differently. Do not record the failed steps "
        "themselves as advice."
    ),
}


def extraction_prompt(outcome: str, fmt: str = "insight", max_items: int = 3) -> str:
    """The instruction an agent follows after an attempt; its answer is JSON for ``mtlgit add --items -``."""
    if outcome not in OUTCOME_RULES:
        raise MtlgitError(f"outcome must be one of {', '.join(OUTCOME_RULES)}")
    if fmt not in FORMAT_RULES:
        raise MtlgitError(f"format must be one of {', '.join(FORMAT_RULES)}")
    categories = "\n".join(f"- {c}" for c in CATEGORIES)
    example: dict[str, Any] = {
        "title": "Reproduce the reported failure before changing code",
        "description": (
            "When a task reports a bug and you are about to edit code: an issue with a traceback or stack trace, "
            "a crash or segfault, an exception, wrong output, 'expected X but got Y', a failing CI job."
        ),
        "content": "Run the reporter's steps and watch them fail first; a fix you never saw fail is a guess.",
        "format": fmt,
        "domains": ["python"],
        "tags": ["verification"],
        "outcome": outcome,
    }
    if fmt == "workflow":
        example["goal"] = "Fix a reported bug with evidence"
        example["content"] = "1. Reproduce the failure.\n2. Find where the bad value is produced.\n3. Fix it there."
    elif fmt == "summary":
        example["content"] = "## Task\nFix a crash in a command-line parser.\n## Experience\nReproducing first ..."
    return f"""You have just finished an attempt at a task. Turn what you learned into at most {max_items} memory \
items for a shared memory pool that other agents will read before different tasks, in other repositories and \
languages.

{OUTCOME_RULES[outcome]}

{FORMAT_RULES[fmt]}{"" if fmt == "summary" else " " + WHEN_RULE}

Rules:
- Generalise. The item must help on a task that is NOT this one. Never mention file names, paths, function or \
variable names, issue ids, exact error strings, queries or data of this task.{"" if fmt == "summary" else SHARED_WORDS}
- Prefer meta-knowledge, the kind that transfers:
{categories}
- One lesson per item, each distinct; no platitudes ("write good code"). Fewer, sharper items are better.
- `domains`: where this was learned (e.g. python, web, shell, data-science, swe-bench); `tags`: topics.
- `cites` (optional): when a lesson rests on particular code of this repository, cite that code here, not in \
the text: a list like ["src/parser.py:parse_header", "src/io.py:40-52"] (a file with a function or class name, or \
with a line range). mtlgit records the current commit and warns later readers when that code changes or goes.
- If nothing general was learned, answer with an empty list [].

Answer with JSON only: a list of objects with the keys title, description, content, format, domains, tags, \
outcome{", goal" if fmt == "workflow" else ""} and, when it applies, cites. Example:

{json.dumps([example], indent=2)}

The answer is stored with: mtlgit add --items - < answer.json
"""


def parse_items(text: str) -> list[Any]:
    """The memory items of an agent's answer: a JSON list, one object, ``{"memories": [...]}`` or JSON lines,
    optionally inside a Markdown code fence.

    :raises MtlgitError: when no JSON can be read, with the position of the error.
    """
    body = text.strip()
    fenced = re.search(r"```(?:json)?\s*\n(.*?)```", body, re.DOTALL)
    if fenced and not body.startswith(("[", "{")):
        body = fenced.group(1).strip()
    if not body:
        return []
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        lines = [line for line in body.splitlines() if line.strip()]
        try:
            data = [json.loads(line) for line in lines]
        except json.JSONDecodeError:
            raise MtlgitError(
                f"the input is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); expected a list of "
                "memory objects, see `mtlgit prompt extract`"
            ) from None
    if isinstance(data, dict):
        data = data.get("memories", data.get("items", [data]))
    if not isinstance(data, list):
        raise MtlgitError("expected a JSON list of memory objects (or one object)")
    return data
