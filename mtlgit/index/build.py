"""The segment builder: files of a source in, a segment out, analysing and embedding only what the cache lacks.

Files are taken a chunk at a time (``CHUNK``), so that a build from nothing holds the analyses (records, terms)
of one chunk only; each chunk becomes compact arrays at once, and the chunks are joined at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mtlgit.index.segment import DocInput, FileInput, SegmentData, concat, from_docs
from mtlgit.progress import progress_bar

if TYPE_CHECKING:
    from mtlgit.cache import BlobCache
    from mtlgit.embed import StaticModel
    from mtlgit.repo import Repo

CHUNK = 16384
ReadBlobs = Callable[[list[int]], dict[int, bytes]]
RecordHook = Callable[[dict[str, Any]], dict[str, Any]]


class Builder:
    """Turns files (with blob ids) into a segment, analysing only contents the cache lacks."""

    def __init__(self, repo: Repo, model: StaticModel, progress: bool = False) -> None:
        self.repo = repo
        self.model = model
        self.progress = progress

    def segment(
        self, files: Sequence[FileInput], read: ReadBlobs, record_hook: RecordHook | None = None
    ) -> SegmentData:
        """A segment of ``files``.

        :param read: returns the bytes of the given file indexes (called only for contents never analysed).
        :param record_hook: rewrites each record before it is stored (a pool's domain label).
        """
        from mtlgit.cache import BlobCache

        cache = BlobCache(self.repo.state_dir / "cache.sqlite")
        try:
            parts = []
            steps = range(0, len(files), CHUNK)
            show = self.progress and len(files) > CHUNK
            for start in progress_bar(steps, show, "Indexing memories"):
                chunk = list(files[start : start + CHUNK])

                def read_chunk(indexes: list[int], start: int = start) -> dict[int, bytes]:
                    contents = read([start + i for i in indexes])
                    return {i: contents[start + i] for i in indexes}

                parts.append(self._chunk(cache, chunk, read_chunk, record_hook))
        finally:
            cache.close()
        if len(parts) == 1:
            return parts[0]
        return concat(parts, self.model.dim)

    def _chunk(
        self, cache: BlobCache, files: list[FileInput], read: ReadBlobs, record_hook: RecordHook | None
    ) -> SegmentData:
        need = [i for i, f in enumerate(files) if not f.problems]
        items = [(files[i].rel, files[i].blob) for i in need]

        def read_items(wanted: list[int]) -> dict[int, bytes]:
            contents = read([need[j] for j in wanted])
            return {j: contents[need[j]] for j in wanted}

        analysed = cache.analyse(items, read_items, False)
        docs: list[DocInput] = []
        for index in need:
            file = files[index]
            analysis = analysed.get(file.blob)
            if analysis is None:
                continue
            file.problems = [{**p, "path": file.rel} for p in analysis["problems"]]
            if analysis["record"] is not None:
                record = analysis["record"] if record_hook is None else record_hook(analysis["record"])
                docs.append(DocInput(index, record, analysis["terms"]))
        self._embed(cache, docs, [files[d.file_index].blob for d in docs])
        return from_docs(files, docs, self.model.dim)

    def _embed(self, cache: BlobCache, docs: list[DocInput], blobs: list[str]) -> None:
        from mtlgit.memory import search_text

        model = self.model
        if not docs:
            return
        cached = cache.vectors(model.key, blobs)
        todo: dict[str, DocInput] = {}
        for doc, blob in zip(docs, blobs, strict=True):
            if blob in cached:
                doc.vector = cached[blob]
            else:
                todo.setdefault(blob, doc)
        if todo:
            texts = [search_text(d.record) for d in todo.values()]
            vectors = np.zeros((len(texts), model.dim), dtype=np.float32)
            batch = 512
            for start in range(0, len(texts), batch):
                vectors[start : start + batch] = model.encode(texts[start : start + batch])
            fresh = {blob: vectors[i].astype(np.float16) for i, blob in enumerate(todo)}
            cache.put_vectors(model.key, fresh)
            cached.update(fresh)
        for doc, blob in zip(docs, blobs, strict=True):
            if doc.vector is None:
                doc.vector = cached[blob]
