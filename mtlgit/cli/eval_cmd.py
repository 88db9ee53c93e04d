from __future__ import annotations

from pathlib import Path

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option


@click.command("eval")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--corpus", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="corpus.jsonl")
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="queries.jsonl")
@click.option("--qrels", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="qrels .tsv")
@click.option("--limit", type=click.IntRange(1), help="Use only this many judged queries (and a corpus subset).")
@click.option(
    "--dense-weight",
    "weights",
    multiple=True,
    type=click.FloatRange(0, 1),
    help="Score hybrid at this dense weight (repeatable); default: the built-in weight.",
)
@click.option("--model", default="default", show_default=True, help="A model2vec folder to evaluate.")
@json_option
def eval_(
    folder: Path | None,
    corpus: Path | None,
    queries: Path | None,
    qrels: Path | None,
    limit: int | None,
    weights: tuple[float, ...],
    model: str,
    as_json: bool,
) -> None:
    """Measure retrieval on a labelled set in BEIR layout: nDCG@10, Recall@10/100, MRR@10 per mode.

    FOLDER may hold corpus.jsonl, queries*.jsonl and qrels*.tsv; or name each file with its option.

    \b
    Example:
        mtlgit eval ../shared/data/scifact
        mtlgit eval --corpus c.jsonl --queries q.jsonl --qrels test.tsv --json
    """
    from mtlgit.errors import MtlgitError
    from mtlgit.evaluate import evaluate, load_dataset

    if folder is not None:
        corpus = corpus or _one(folder, "corpus*.jsonl")
        queries = queries or _one(folder, "queries*.jsonl")
        qrels = qrels or _one(folder, "qrels*.tsv")
    if corpus is None or queries is None or qrels is None:
        raise MtlgitError("give a BEIR folder, or all of --corpus, --queries and --qrels")
    dataset = load_dataset(corpus, queries, qrels, limit)
    if not dataset.queries:
        raise MtlgitError(f"no query in {queries} has a positive judgement in {qrels} for a document of {corpus}")
    results = evaluate(dataset, dense_weights=list(weights) or None, model=model)
    if as_json:
        echo_json({"corpus": len(dataset.corpus), "queries": len(dataset.queries), "results": results})
        return
    click.echo(f"{len(dataset.corpus)} documents, {len(dataset.queries)} judged queries")
    click.echo(f"{'mode':<14}{'nDCG@10':>9}{'R@10':>8}{'R@100':>8}{'MRR@10':>8}")
    for name, m in results.items():
        click.echo(f"{name:<14}{m['ndcg@10']:>9.4f}{m['recall@10']:>8.4f}{m['recall@100']:>8.4f}{m['mrr@10']:>8.4f}")


def _one(folder: Path, pattern: str) -> Path:
    from mtlgit.errors import MtlgitError

    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise MtlgitError(f"{folder}: expected one {pattern} file, found {names}: name it with an option")
    return found[0]
