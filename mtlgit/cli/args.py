"""Argument helpers that do not need click (the fast recall path uses them too)."""

from __future__ import annotations

from collections.abc import Iterable


def split_words(values: Iterable[str]) -> list[str]:
    """``--tag a,b --tag c`` -> [a, b, c]."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
