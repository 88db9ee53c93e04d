"""mtlgit: a git-native memory store for coding agents.

>>> from mtlgit import Pool
>>> pool = Pool.open()                                   # doctest: +SKIP
>>> pool.add(title="...", description="...", content="...")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Memory", "MtlgitError", "Pool", "Problem", "__version__"]

if TYPE_CHECKING:
    from mtlgit.errors import MtlgitError, Problem
    from mtlgit.memory import Memory
    from mtlgit.store import Pool


def __getattr__(name: str) -> Any:
    # Lazy: `mtlgit recall` imports this package first and must not pay for YAML or the store.
    if name == "Pool":
        from mtlgit.store import Pool

        return Pool
    if name == "Memory":
        from mtlgit.memory import Memory

        return Memory
    if name in ("MtlgitError", "Problem"):
        from mtlgit import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'mtlgit' has no attribute {name!r}")
