"""The vocabulary of format v1 (docs/format.md), importable without loading YAML."""

from __future__ import annotations

FORMATS = ("insight", "workflow", "summary", "trajectory")
SCOPES = ("task-agnostic", "task-specific")
OUTCOMES = ("success", "failure", "unknown")
STATUSES = ("active", "retired", "superseded")
SOURCE_TEXT_KEYS = ("task", "agent", "model", "commit")
KEY_ORDER = (
    "id",
    "title",
    "description",
    "goal",
    "format",
    "scope",
    "domains",
    "tags",
    "outcome",
    "source",
    "created",
    "status",
    "superseded_by",
)
KNOWN_KEYS = frozenset(KEY_ORDER)
DEFAULT_SCOPE = {
    "insight": "task-agnostic",
    "workflow": "task-agnostic",
    "summary": "task-specific",
    "trajectory": "task-specific",
}
