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
    # No monitor thread: a build forks its workers only from a process with one thread (forking beside another
    # thread can copy a lock it holds), and tqdm's monitor would outlive the bar and keep every later build of
    # the process (a terminal's `mtlgit index` after its first bar) from forking.
    tqdm.monitor_interval = 0
    return tqdm(items, desc=label, unit="", leave=False)  # type: ignore[no-any-return]
