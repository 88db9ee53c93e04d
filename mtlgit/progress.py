"""A progress bar for long builds on a terminal (tqdm, which model2vec brings), nothing otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def progress_bar(items: Iterable[Any], show: bool, label: str) -> Iterable[Any]:
    if not show:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with model2vec
        return items
    return tqdm(items, desc=label, unit="", leave=False)  # type: ignore[no-any-return]
