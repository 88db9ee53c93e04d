"""The semantic half of the index: a model2vec static embedding model, loaded for speed.

A static model is a table of one vector per token; a text's vector is the mean of its tokens' rows. This
loader reads a model2vec folder (``config.json``, ``model.safetensors``, ``tokenizer.json``) without
importing model2vec (~0.4 s with its hub imports): the table is memory-mapped straight out of the
safetensors file, so a query touches only the rows of its own tokens. When the tokenizer is BERT's WordPiece
(the default model's), a query is tokenized by :mod:`mtlgit.wordpiece` in pure Python, which saves the ~40 ms it
takes to import and load ``tokenizers``, and many memories by the same vocabulary one distinct word at a time
(:class:`_WordIds`, the library's ids, ~4x less CPU a build than the library with its pooling); other tokenizers
go through the ``tokenizers`` library.
"""

from __future__ import annotations

import json
import os
import re
import struct
import unicodedata
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from mtlgit.errors import MtlgitError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I8": np.int8, "I32": np.int32, "I64": np.int64}
SMALL_BATCH = 8  # up to this many texts, encode() tokenizes with the query tokenizer


class StaticModel:
    """A model2vec model folder, ready to encode memories and queries.

    :param folder: the folder holding ``config.json``, ``model.safetensors`` and ``tokenizer.json``.
    :param name: how the model is named in configuration and messages.
    :raises MtlgitError: when a file is missing or unreadable, naming it.
    """

    def __init__(self, folder: Path, name: str = "default", cache_dir: Path | None = None) -> None:
        self.folder = folder
        self.name = name
        self.cache_dir = cache_dir
        missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
        if missing:
            raise MtlgitError(
                f"model '{name}' at {folder} is missing {', '.join(missing)}: a model2vec folder holds "
                f"{', '.join(MODEL_FILES)}; point 'model:' in .mtlgit.yaml at a complete one"
            )
        try:
            self.config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            self.tensors = _map_safetensors(folder / "model.safetensors")
        except (OSError, ValueError) as exc:
            raise MtlgitError(f"model '{name}' at {folder} cannot be read ({exc}): rebuild or replace it") from None
        if "embeddings" not in self.tensors:
            raise MtlgitError(f"model '{name}': {folder / 'model.safetensors'} has no 'embeddings' tensor")
        self.embeddings = self.tensors["embeddings"]
        self.weights = self.tensors.get("weights")
        self.mapping = self.tensors.get("mapping")
        self.normalize = bool(self.config.get("normalize", True))
        # Quantised tables (int8) carry one global scale; it matters only when vectors are not normalised.
        self.scale = float(self.config.get("embedding_scale") or 1.0)
        self.max_length: int | None = self.config.get("max_length", 512)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def files_stat(self) -> list[list[Any]]:
        """(path, size, mtime_ns) of the model's files: a snapshot keeps them to notice a changed model with
        three stats, instead of hashing the model on every recall."""
        out: list[list[Any]] = []
        for name in MODEL_FILES:
            stat = (self.folder / name).stat()
            out.append([str(self.folder / name), stat.st_size, stat.st_mtime_ns])
        return out

    @cached_property
    def key(self) -> str:
        """Identifies the model's vectors: the hash of its files' sizes, times and safetensors header."""
        import hashlib

        digest = hashlib.sha1()  # noqa: S324 - an identity, not a security boundary
        for name in MODEL_FILES:
            stat = (self.folder / name).stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        with open(self.folder / "model.safetensors", "rb") as handle:
            digest.update(handle.read(8 + struct.unpack("<Q", handle.read(8))[0]))
        return digest.hexdigest()[:16]

    @cached_property
    def _vocab(self) -> dict[str, Any]:
        return json.loads((self.folder / "tokenizer.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    @cached_property
    def median_token_length(self) -> int:
        return int(self._query_tables["median"])

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tokenizer.no_padding()
        if self.max_length:
            tokenizer.enable_truncation(self.max_length)
        else:
            tokenizer.no_truncation()
        return tokenizer

    @cached_property
    def _unk_id(self) -> int | None:
        model = self._vocab.get("model", {})
        unk = model.get("unk_token")
        vocab = model.get("vocab")
        if isinstance(vocab, dict) and unk in vocab:
            return int(vocab[unk])
        return None

    @cached_property
    def _query_tables(self) -> dict[str, Any]:
        """What tokenizing a query needs, cached per model under ``cache_dir`` as a sorted, memory-mapped
        vocabulary: loading it costs well under a millisecond, parsing tokenizer.json ~10-35 ms."""
        if self.cache_dir is not None:
            cached = _load_tables(self.cache_dir / "models", self.key)
            if cached is not None:
                return cached
        from mtlgit.wordpiece import WordPiece

        vocab = self._vocab.get("model", {}).get("vocab", {})
        lengths = sorted(len(token) for token in vocab) if isinstance(vocab, dict) else []
        tables: dict[str, Any] = {
            "median": int(np.median(lengths)) if lengths else 5,
            "wordpiece": WordPiece.settings(self._vocab),
        }
        if self.cache_dir is not None and tables["wordpiece"] is not None:
            try:
                _save_tables(self.cache_dir / "models", self.key, tables, vocab)
            except OSError:
                pass  # a read-only or full disk: the tables below serve this process
            else:
                cached = _load_tables(self.cache_dir / "models", self.key)
                if cached is not None:
                    return cached
        if tables["wordpiece"] is not None:
            tables["lookup"] = vocab.get
        return tables

    @cached_property
    def _wordpiece(self) -> Any:
        from mtlgit.wordpiece import WordPiece

        tables = self._query_tables
        if tables["wordpiece"] is None:
            return None
        return WordPiece(tables["lookup"], **tables["wordpiece"])

    def _truncate(self, text: str) -> str:
        return text[: self.max_length * self.median_token_length] if self.max_length else text

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, as model2vec counts them: no special tokens, no unknown token."""
        tokenizer = self._tokenizer
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets: ~10% faster
        encodings = encode([self._truncate(t) for t in texts], add_special_tokens=False)
        unk = self._unk_id
        return [[i for i in e.ids if i != unk] for e in encodings]

    def query_ids(self, text: str) -> list[int]:
        text = self._truncate(text)
        words = self._query_words
        if words is not None:
            if len(words) > 100_000:  # a bound for a long-lived process; its words are met again soon
                words.clear()
            ids = words.ids(text, None)
            if ids is not None:
                return ids[: self.max_length] if self.max_length else ids
        return self.token_ids([text])[0]

    @cached_property
    def _query_words(self) -> _WordIds | None:
        """Token ids by word for queries, kept for the process: a word is split once, and a task text's words
        recur (the character-by-character split of every query cost ~2 ms of a recall at 100k)."""
        wordpiece = self._wordpiece
        return _WordIds(wordpiece) if wordpiece is not None else None

    def pool(self, ids: list[int]) -> np.ndarray:
        """The vector of one text from its token ids: the (weighted) mean of their rows, normalised."""
        vector = self._mean(ids)
        if self.normalize:
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                vector /= norm
        return vector

    def _mean(self, ids: list[int]) -> np.ndarray:
        """The (weighted) mean of the rows of ``ids``. An integer (quantised) table without weights is summed as
        integers, exactly, and scaled once: a quarter of the memory traffic of float32 rows, and no copy."""
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        index = np.array(ids, dtype=np.int64)
        rows = self.embeddings[self.mapping[index] if self.mapping is not None else index]
        if self.weights is None and np.issubdtype(rows.dtype, np.integer):
            total: np.ndarray = rows.sum(axis=0, dtype=np.int32).astype(np.float32)
            total *= np.float32(self.scale / len(ids))
            return total
        rows = rows.astype(np.float32)
        if self.scale != 1.0:
            rows *= self.scale
        if self.weights is not None:
            rows *= self.weights[index].astype(np.float32)[:, None]
        mean: np.ndarray = rows.mean(axis=0)
        return mean

    @cached_property
    def _word_ids(self) -> _WordIds | None:
        """Token ids by word, filled as words are met, for plain BERT WordPiece (None for other tokenizers)."""
        from mtlgit.wordpiece import WordPiece

        settings = WordPiece.settings(self._vocab)
        if settings is None or settings["unk_id"] is None:
            return None
        vocab = self._vocab["model"]["vocab"]
        return _WordIds(WordPiece(vocab.get, **settings), vocab)

    def prepare(self) -> None:
        """Build what encoding many texts needs now: a process about to fork workers shares it with them."""
        _ = self._word_ids
        _ = self.median_token_length  # the bound of _truncate: else each worker reads or builds the query tables

    def _batch_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of a batch, the same as the library's (tests hold them equal). A few texts (a refresh after
        one edit) go through the query tokenizer, which needs no tokenizer.json; many texts, when the tokenizer
        is plain BERT WordPiece, are split into words by a regular expression and each distinct word is
        tokenized once (~10x faster than the library, whose per-text cost dominates a first build); text it
        cannot split that way (non-ASCII, control characters, special tokens) goes to the library."""
        if len(texts) <= SMALL_BATCH and "_tokenizer" not in self.__dict__:
            return [self.query_ids(text) for text in texts]
        words = self._word_ids
        if words is None:
            return self.token_ids(texts)
        out: list[list[int]] = []
        others: list[int] = []
        for text in texts:
            ids = words.ids(self._truncate(text), self.max_length)
            if ids is None:
                others.append(len(out))
            out.append(ids or [])
        if others:
            for at, ids in zip(others, self.token_ids([texts[i] for i in others]), strict=True):
                out[at] = ids
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of many texts (float32, one row each). Each text's rows are summed on their own: a few
        kilobytes that stay in the processor's cache (a segmented sum over a whole batch is ~2x slower)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        all_ids = self._batch_ids(texts)
        if self.weights is None and np.issubdtype(self.embeddings.dtype, np.integer):
            # Summed as integers, exactly, and scaled once per text (see _mean), from one array of every id.
            lengths = np.fromiter(map(len, all_ids), dtype=np.int64, count=len(all_ids))
            flat = np.fromiter(chain.from_iterable(all_ids), dtype=np.int64, count=int(lengths.sum()))
            if self.mapping is not None:
                flat = self.mapping[flat]
            table, ends = self.embeddings, np.cumsum(lengths).tolist()
            for row, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
                if end > start:
                    out[row] = table.take(flat[start:end], axis=0).sum(axis=0, dtype=np.int32)  # take: ~20% faster
            out *= (self.scale / np.maximum(lengths, 1)).astype(np.float32)[:, None]
        else:
            for row, ids in enumerate(all_ids):
                if ids:
                    out[row] = self._mean(ids)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.pool(self.query_ids(text))


# ASCII text BERT's normaliser changes only by lower-casing: printable characters, tabs and line breaks.
_PLAIN_ASCII = re.compile(r"[\t\n\r -~]*")
_ASCII_CONTROLS: dict[int, str | None] = {c: None for c in (*range(9), 11, 12, *range(14, 32), 127)}
# BERT's pre-tokenizer on normalised text: runs of characters that are neither white space nor punctuation, and
# each punctuation mark alone (other punctuation than ASCII's is set apart by spaces before this runs).
_WORDS = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


class _WordIds(dict[str, tuple[int, ...]]):
    """BERT WordPiece, the same ids as the ``tokenizers`` library, for many texts: each text is normalised by
    ``str`` methods and a translation table (the pure-Python normaliser works a character at a time: ~1 ms per
    memory) and split at white space; each distinct run between white space is split into words by a regular
    expression once, and each distinct word tokenized once, the unknown token standing for a word that cannot be
    split."""

    def __init__(self, wordpiece: Any, vocab: dict[str, int] | None = None) -> None:
        super().__init__()
        self.wordpiece = wordpiece
        self.unk: int = wordpiece.unk_id
        self.chars: dict[int, str | None] = {}
        self.vocab = vocab
        self._prefill()

    def _prefill(self) -> None:
        if self.vocab is None:  # a query's few words: each split when met
            return
        # An ASCII word of the vocabulary is its own single piece (the longest match is tried first): known
        # before any text is read, so that forked workers share them instead of each working them out again.
        # Only single words: a run such as "..." is three words, "." three times, not the vocabulary's "...".
        prefix, longest = self.wordpiece.prefix, self.wordpiece.max_chars
        self.update(
            (token, (number,))
            for token, number in self.vocab.items()
            if token.isascii()
            and (token.isalnum() or len(token) == 1)
            and not token.startswith(prefix)
            and len(token) <= longest
            and number != self.unk
        )
        self.limit = len(self) + _MAX_LEARNT

    def __missing__(self, key: str) -> tuple[int, ...]:
        """The ids of a word or of a run of text between white space ("cells,", "(hmscs)"): a run of several
        words is looked up whole the next time (runs recur across memories: one look-up, no expression)."""
        if self.vocab is not None and len(self) > self.limit:
            self.clear()
            self._prefill()
        words = [key] if key.isalnum() else _WORDS.findall(key)
        if len(words) == 1 and words[0] == key:
            # The library gives one unknown token for a word too long or not made of vocabulary pieces. An ASCII
            # word here is normalised and split already (by normalize and _WORDS): only its pieces are looked up.
            found = self.wordpiece.word_ids(key) if key.isascii() else self.wordpiece.encode(key)
            ids = tuple(found) or (self.unk,)
        else:
            ids = tuple(chain.from_iterable(map(self.__getitem__, words)))
        self[key] = ids
        return ids

    def normalize(self, text: str) -> str:
        """What BERT's normaliser makes of ``text``, with other punctuation than ASCII's set apart by spaces."""
        if _PLAIN_ASCII.fullmatch(text):
            return text.lower()
        if not text.isascii():
            # Canonical decomposition keeps each character's class (white space, control, punctuation, CJK),
            # so characters are classified after it, each distinct one once.
            text = unicodedata.normalize("NFD", text)
        table = dict(_ASCII_CONTROLS)
        for char in set(text):
            if not char.isascii():
                table[ord(char)] = self._char(char)
        text = text.translate(table)
        # Lower-case char by char where it matters, as the library does: str.lower() gives a final sigma its form.
        return text.lower() if "\u03a3" not in text else "".join(c.lower() for c in text)

    def _char(self, char: str) -> str | None:
        from mtlgit.wordpiece import _WHITESPACE, _is_chinese, _is_control, _is_punctuation

        code = ord(char)
        if code not in self.chars:
            if code == 0xFFFD or _is_control(char) or unicodedata.category(char) == "Mn":
                self.chars[code] = None
            elif char in _WHITESPACE:
                self.chars[code] = " "
            elif _is_chinese(code) or _is_punctuation(char):
                self.chars[code] = f" {char} "
            else:
                self.chars[code] = char
        return self.chars[code]

    def ids(self, text: str, max_length: int | None) -> list[int] | None:
        """Ids of ``text`` as the library gives them: truncated to ``max_length`` tokens, then the unknown token
        dropped; None for text holding a special token (``[CLS]``...), which only the library splits out."""
        if not self.wordpiece.handles(text):
            return None
        # No word spans white space (str.split() and the expression's \s are the same characters).
        ids = list(chain.from_iterable(map(self.__getitem__, self.normalize(text).split())))
        if max_length:
            del ids[max_length:]
        return [i for i in ids if i != self.unk] if self.unk in ids else ids


# Words and runs learnt by a build's tokenizer beyond the vocabulary's own words: then it starts again.
_MAX_LEARNT = 500_000


def _save_tables(folder: Path, key: str, tables: dict[str, Any], vocab: dict[str, int]) -> None:
    """Write the query tables of a model: sorted vocabulary and ids as .npy, then the settings as JSON with the
    size, CRC-32 and times of each array (each file replaced atomically; the JSON last)."""
    import zlib

    folder.mkdir(parents=True, exist_ok=True)
    tokens = sorted(vocab, key=lambda t: t.encode("utf-8"))
    tag = f".{os.getpid()}.tmp"
    arrays = {
        f"{key}.tokens.npy": np.array([t.encode("utf-8") for t in tokens], dtype=bytes),
        f"{key}.ids.npy": np.array([vocab[t] for t in tokens], dtype=np.int32),
    }
    names = [*arrays, f"{key}.json"]
    try:
        parts = {}
        for name, array in arrays.items():
            with open(folder / f"{name}{tag}", "wb") as handle:  # a file object: np.save would add ".npy"
                np.save(handle, array, allow_pickle=False)
            crc = zlib.crc32((folder / f"{name}{tag}").read_bytes())
            os.replace(folder / f"{name}{tag}", folder / name)
            st = os.stat(folder / name)
            parts[name] = [st.st_size, crc, st.st_mtime_ns, st.st_ctime_ns]
        settings = {"median": tables["median"], "wordpiece": tables["wordpiece"], "parts": parts}
        (folder / f"{key}.json{tag}").write_text(json.dumps(settings), encoding="utf-8")
        os.replace(folder / f"{key}.json{tag}", folder / f"{key}.json")
    finally:
        for name in names:
            (folder / f"{name}{tag}").unlink(missing_ok=True)


def check_tables(folder: Path, key: str, full: bool = False) -> str | None:
    """What is wrong with a model's cached query tables (None: nothing). A file whose times changed since it
    was written, or every file with ``full``, must match its checksum."""
    try:
        settings = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{folder / key}.json: {exc}"
    return _check_parts(folder, settings.get("parts") if isinstance(settings, dict) else None, full)


def _check_parts(folder: Path, parts: Any, full: bool) -> str | None:
    import zlib

    if not isinstance(parts, dict) or len(parts) != 2:
        return f"{folder}: the query tables' settings list no files"
    try:
        for name, (size, crc, mtime_ns, ctime_ns) in parts.items():
            st = os.stat(folder / name)
            if st.st_size != size:
                return f"{folder / name} is {st.st_size} bytes, not {size}"
            changed = st.st_mtime_ns != mtime_ns or st.st_ctime_ns != ctime_ns
            if (full or changed) and zlib.crc32((folder / name).read_bytes()) != crc:
                return f"{folder / name} fails its checksum"
    except (OSError, ValueError, TypeError) as exc:
        return f"{folder}: {exc}"
    return None


def _load_tables(folder: Path, key: str) -> dict[str, Any] | None:
    """The cached query tables, or None when missing or damaged (they are then made again)."""
    try:
        tables: dict[str, Any] = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if _check_parts(folder, tables.pop("parts", None), full=False) is not None:
            return None
        tokens = np.load(folder / f"{key}.tokens.npy", mmap_mode="r", allow_pickle=False)
        ids = np.load(folder / f"{key}.ids.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError, AttributeError):
        return None
    if len(tokens) != len(ids):
        return None

    def lookup(piece: str) -> int | None:
        wanted = piece.encode("utf-8")
        at = int(np.searchsorted(tokens, wanted))
        return int(ids[at]) if at < len(tokens) and tokens[at] == wanted else None

    tables["lookup"] = lookup
    return tables


def _map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map every tensor of a safetensors file (header: 8-byte length, then JSON)."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is truncated")
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            raise ValueError(f"{path.name} is truncated or not a safetensors file")
        header = json.loads(handle.read(length))
    base = 8 + length
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if base + end > size:
            raise ValueError(f"{path.name} is truncated: tensor '{name}' runs past the end of the file")
        if dtype == "BF16":
            raw = np.memmap(path, dtype=np.uint16, mode="r", offset=base + start, shape=shape)
            tensors[name] = (raw.astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            # A plain view of the map: indexing a numpy.memmap costs ~10x more (each result is a memmap too).
            mapped = np.memmap(path, dtype=_DTYPES[dtype], mode="r", offset=base + start, shape=shape)
            tensors[name] = np.asarray(mapped)
        else:
            raise ValueError(f"tensor '{name}' has dtype {dtype}, which mtlgit cannot read")
    return tensors


def load_model(spec: str, root: Path, cache_dir: Path) -> StaticModel:
    """The model named by ``model:`` in .mtlgit.yaml: "default", a folder (relative to the repository), or a
    Hugging Face hub id (fetched once by model2vec, then kept under ``cache_dir``).

    :raises MtlgitError: when it cannot be found or read, saying what to do.
    """
    if spec in ("", "default"):
        return StaticModel(DEFAULT_MODEL_DIR, "default", cache_dir)
    folder = Path(spec).expanduser()
    folder = folder if folder.is_absolute() else root / folder
    if folder.is_dir():
        return StaticModel(folder, spec, cache_dir)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise MtlgitError(f"model folder '{spec}' does not exist: fix 'model:' in .mtlgit.yaml")
    local = cache_dir / "models" / spec.replace("/", "--")
    if not local.is_dir():
        _fetch_hub_model(spec, local)
    return StaticModel(local, spec, cache_dir)


def _fetch_hub_model(hub_id: str, target: Path) -> None:
    try:
        from model2vec import StaticModel as HubModel
    except ImportError:  # pragma: no cover - model2vec is a dependency
        raise MtlgitError("loading a hub model needs model2vec: pip install model2vec") from None
    try:
        model = HubModel.from_pretrained(hub_id)
    except Exception as exc:  # noqa: BLE001 - the hub raises many kinds; all mean "not available"
        raise MtlgitError(
            f"model '{hub_id}' could not be fetched from the Hugging Face hub ({type(exc).__name__}): check the "
            "id and the network, or set 'model:' in .mtlgit.yaml to 'default' or a local model2vec folder"
        ) from None
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(str(tmp))
    tmp.rename(target)
