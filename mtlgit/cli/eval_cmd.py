from __future__ import annotations

from pathlib import Path

import click

from mtlgit.cli.main import echo_json
from mtlgit.cli.options import json_option
from mtlgit.errors import MtlgitError
from mtlgit.rules import MODES


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
@click.option(
    "--tasks",
    type=click.Path(exists=True, path_type=Path),
    help="Agent tasks instead of BEIR: a folder of *.jsonl task files (or one file).",
)
@click.option(
    "--split",
    type=click.Choice(["dev", "test", "all"]),
    default="all",
    show_default=True,
    help="With --tasks: which tasks.",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(MODES),
    help="With --tasks: this retrieval mode (repeatable); default: hybrid, bm25 and dense.",
)
@click.option(
    "--pool",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --tasks: a folder of memory files to recall from; default: the starter pool.",
)
@json_option
def eval_(
    folder: Path | None,
    corpus: Path | None,
    queries: Path | None,
    qrels: Path | None,
    limit: int | None,
    weights: tuple[float, ...],
    model: str,
    tasks: Path | None,
    split: str,
    modes: tuple[str, ...],
    pool: Path | None,
    as_json: bool,
) -> None:
    """Measure retrieval on a labelled set in BEIR layout: nDCG@10, Recall@10/100, MRR@10 per mode;
    or, with --tasks, on agent tasks labelled against a memory pool (benchmarks/agent_tasks/README.md):
    hit@3, central@3, nDCG@10, MRR@10 and abstention, per mode, overall and per style.

    FOLDER may hold corpus.jsonl, queries*.jsonl and qrels*.tsv; or name each file with its option.

    \b
    Example:
        mtlgit eval ~/data/scifact   # a BEIR dataset folder, e.g. SciFact unzipped
        mtlgit eval --corpus c.jsonl --queries q.jsonl --qrels test.tsv --json
        mtlgit eval --tasks benchmarks/agent_tasks --split dev --mode hybrid
    """
    from mtlgit.evaluate import evaluate, load_dataset

    if tasks is not None:
        beir = [
            name
            for name, value in (
                ("FOLDER", folder),
                ("--corpus", corpus),
                ("--queries", queries),
                ("--qrels", qrels),
                ("--limit", limit),
                ("--dense-weight", weights),
            )
            if value
        ]
        if beir:
            raise MtlgitError(f"--tasks does not take {', '.join(beir)}: those are for a BEIR set")
        _eval_tasks(tasks, split, modes or MODES, pool, model, as_json)
        return
    if split != "all" or modes or pool is not None:
        raise MtlgitError("--split, --mode and --pool go with --tasks")
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


def _eval_tasks(source: Path, split: str, modes: tuple[str, ...], pool: Path | None, model: str, as_json: bool) -> None:
    from mtlgit.evaluate import evaluate_tasks, load_tasks
    from mtlgit.resources import starter_dir

    if model != "default" and not Path(model).is_dir():
        raise MtlgitError(f"--model: {model} is not a folder: give a model2vec folder, or leave --model out")
    tasks = [task for task in load_tasks(source) if split in ("all", task.split)]
    if not tasks:
        raise MtlgitError(f"{source}: no task in the {split} split")
    modes = tuple(dict.fromkeys(modes))
    results = evaluate_tasks(tasks, (pool or starter_dir()).resolve(), modes, model=model)
    if as_json:
        echo_json({"tasks": str(source), "split": split, **results})
        return
    labelled = sum(1 for task in tasks if task.labels)
    click.echo(
        f"{len(tasks)} tasks ({labelled} labelled, {len(tasks) - labelled} without a memory), split {split}; "
        f"pool {results['pool']} ({results['pool_size']} memories)"
    )
    if results["unreadable_files"]:
        click.echo(f"note: {results['unreadable_files']} memory file(s) could not be read; `mtlgit lint` says why")
    columns = ("hit@3", "central@3", "ndcg@10", "mrr@10", "kept_hit@3", "silent_unlabelled", "kept_labelled")
    heads = ("hit@3", "central@3", "nDCG@10", "MRR@10", "kept-hit@3", "none-silent", "labelled-kept")
    click.echo(f"{'mode':<8}{'scope':<16}{'n':>4}" + "".join(f"{h:>14}" for h in heads))
    for mode, figures in results["modes"].items():
        rows = [("all", figures["overall"]), *figures["styles"].items()]
        for scope, metrics in rows:
            cells = "".join(f"{'-' if metrics[c] is None else format(metrics[c], '.3f'):>14}" for c in columns)
            click.echo(f"{mode:<8}{scope:<16}{metrics['tasks']:>4}{cells}")


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise MtlgitError(f"{folder}: expected one {pattern} file, found {names}: name it with an option")
    return found[0]
