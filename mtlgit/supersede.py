"""The ``superseded_by`` links between memories: where a chain leads, the cycles, and the links to nowhere.

A superseded memory is hidden from recall because the memory it names replaces it. A cycle (X superseded by
Y, Y by X) would hide every memory in it with nothing to replace them, so ``retire --superseded-by`` refuses
to close one and ``lint`` reports one written by hand as an error. Recall does not guess which memory of a
hand-written cycle is current: each file says it is superseded, so each stays hidden (``--include-retired``
still finds them) until the cycle is fixed; lint names every file and line of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtlgit.errors import MtlgitError
from mtlgit.memory import Memory


def _by_id(memories: Sequence[Memory]) -> dict[str, Memory]:
    return {m.id.upper(): m for m in reversed(memories)}


def check_supersede(memories: Sequence[Memory], memory: Memory, successor: Memory) -> None:
    """Refuse to supersede ``memory`` by ``successor`` when the successor's own chain leads back to it.

    :raises MtlgitError: naming the chain and what to do instead.
    """
    if successor.id.upper() == memory.id.upper():
        raise MtlgitError("a memory cannot supersede itself")
    by_id = _by_id(memories)
    chain = [successor]
    seen = {successor.id.upper()}
    while chain[-1].superseded_by:
        following = by_id.get(chain[-1].superseded_by.upper())
        if following is None or following.id.upper() in seen:
            return
        if following.id.upper() == memory.id.upper():
            links = " -> ".join(m.id for m in [memory, *chain, memory])
            raise MtlgitError(
                f"superseding {memory.id} by {successor.id} would make a cycle ({links}) that hides them all "
                f"from recall: supersede {memory.id} by a memory that is not superseded, or make "
                f"{successor.id} active again first"
            )
        chain.append(following)
        seen.add(following.id.upper())


def cycles(memories: Sequence[Memory]) -> list[list[Memory]]:
    """Every cycle of ``superseded_by`` links (a memory superseded by itself is one), each in link order."""
    by_id = _by_id(memories)
    done: set[str] = set()
    found: list[list[Memory]] = []
    for start in memories:
        walk: list[str] = []
        key = start.id.upper()
        while key in by_id and key not in done and key not in walk:
            walk.append(key)
            key = (by_id[key].superseded_by or "").upper()
        if key in walk:
            found.append([by_id[k] for k in walk[walk.index(key) :]])
        done.update(walk)
    return found


def dangling(memories: Sequence[Memory]) -> list[Memory]:
    """The memories whose ``superseded_by`` names an id no memory has."""
    by_id = _by_id(memories)
    return [m for m in memories if m.superseded_by and m.superseded_by.upper() not in by_id]
