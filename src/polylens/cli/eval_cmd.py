"""`polylens eval DATASET`: index a benchmark's corpus, run its queries, print metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from polylens.cli._common import (
    cli_errors,
    err_console,
    out_console,
    print_table,
    setup_logging,
)


def eval_(
    dataset: Annotated[
        Path, typer.Argument(help="BEIR folder, Karpathy JSON, M-BEIR jsonl, or ViDoRe parquet.")
    ],
    index_dir: Annotated[
        Path | None,
        typer.Option("--index", "-i", help="Index to build or reuse (default: in --work)."),
    ] = None,
    work: Annotated[
        Path | None,
        typer.Option(
            help="Where the corpus is laid out as files (default ./.polylens-eval/NAME-HASH)."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="qrels split (BEIR) or Karpathy split.")] = "test",
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            "-c",
            help="Search configuration(s): hybrid, hybrid-text, bm25, dense-text, dense-image.",
        ),
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="Extra ranx metric, e.g. map@50.")
    ] = None,
    repeat: Annotated[
        int, typer.Option(min=1, help="Repeat each configuration; report mean ± std.")
    ] = 1,
    seed: Annotated[
        int, typer.Option(help="Seed recorded in the report and set before running.")
    ] = 0,
    candidates: Annotated[Path | None, typer.Option(help="M-BEIR candidate pool (jsonl).")] = None,
    images_root: Annotated[
        Path | None, typer.Option(help="Folder that image paths are relative to.")
    ] = None,
    direction: Annotated[str, typer.Option(help="Karpathy: t2i (caption→image) or i2t.")] = "t2i",
    image_model: Annotated[
        str | None, typer.Option(help="Image-text model for a new index.")
    ] = None,
    text_model: Annotated[str | None, typer.Option(help="Text embedder for a new index.")] = None,
    page_model: Annotated[
        str | None,
        typer.Option(
            help="Late-interaction page model for a new index (colqwen2, colpali, a local dir)."
        ),
    ] = None,
    ocr: Annotated[
        bool | None,
        typer.Option("--ocr/--no-ocr", help="OCR images and scanned pages (new index)."),
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option(help="TREC qrels file that replaces the dataset's judgments.")
    ] = None,
    run: Annotated[
        list[Path] | None, typer.Option("--run", help="Also score this TREC run file (repeatable).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write report.json, TREC runs and recall@k PNG here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    rerank: Annotated[
        str | None,
        typer.Option(
            "--rerank",
            help="Also score the first configuration re-ordered by this cross-encoder.",
            metavar="NAME",
        ),
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Search fusion method and weights on these judgments; write the best to "
            "the index's polylens.toml.",
        ),
    ] = False,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="int8: also index with the int8 image encoder, beside, and show how far "
            'its rankings move from fp32\'s (before you set precision = "int8").',
            metavar="P",
        ),
    ] = None,
    ask: Annotated[
        bool,
        typer.Option(
            "--ask",
            help="DATASET is a question file (JSONL with gold pages and answers): measure the "
            "evidence ask sends (no model needed) and, with an endpoint, its answers, "
            "citations and abstentions. Needs --index.",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="With --ask: the model endpoint.", metavar="URL"),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option("--model", help="With --ask: the model name.", metavar="NAME")
    ] = None,
    max_evidence: Annotated[
        int | None,
        typer.Option("--max-evidence", min=1, max=50, help="With --ask.", metavar="N"),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record", help="With --ask: write the answers here (JSONL).", metavar="FILE"
        ),
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers", help="With --ask: score answers recorded earlier, offline.", metavar="FILE"
        ),
    ] = None,
) -> None:
    """Evaluate retrieval quality: nDCG@10, Recall@1/5/10/100, MRR@10, MAP@100 per
    configuration; with --ask, the evidence and answers of `polylens ask`."""
    setup_logging(True)
    if ask:
        from polylens.cli.eval_ask import run_ask_eval
        from polylens.errors import InputError

        with cli_errors():
            if index_dir is None:
                raise InputError("--ask needs --index DIR: the index the questions are about")
            run_ask_eval(
                dataset,
                index_dir=index_dir,
                endpoint=endpoint,
                model=llm_model,
                max_evidence=max_evidence,
                record=record,
                answers=answers,
                as_json=as_json,
            )
        return
    from polylens.eval.datasets import load_dataset, read_trec_qrels, read_trec_run
    from polylens.eval.runner import DEFAULT_METRICS, add_external_run, write_outputs
    from polylens.eval.session import evaluate_dataset

    metrics = list(DEFAULT_METRICS) + [m for m in (metric or []) if m not in DEFAULT_METRICS]
    with cli_errors():
        data = load_dataset(
            dataset,
            split=split,
            candidates=candidates,
            images_root=images_root,
            direction=direction,
        )
        if qrels is not None:
            data.qrels = read_trec_qrels(qrels)
            data.validate()
        if not as_json:
            err_console.print(
                f"{data.name}: {len(data.corpus)} documents, {len(data.queries)} judged queries"
            )
        report, summary = evaluate_dataset(
            data,
            work_dir=work,
            index_dir=index_dir,
            settings={
                "image_model": image_model,
                "text_model": text_model,
                "ocr": ocr,
                "rerank": rerank,
                "page_model": page_model,
                # a page benchmark's corpus is pages, whatever OCR finds on them
                "page_min_text": 0 if page_model and _all_pages(data) else None,
            },
            configs=config,
            metrics=metrics,
            repeat=repeat,
            seed=seed,
            on_config=None if as_json else (lambda name: err_console.print(f"running {name}…")),
            tune=tune,
            precision=precision,
        )
        for path in run or []:
            add_external_run(report, data, f"run:{path.name}", read_trec_run(path), metrics)
        written = write_outputs(report, out) if out else []
    for warning in summary.warnings:  # a model that could not load: its configuration is absent
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if as_json:
        out_console.print_json(json.dumps(report.to_dict()))
        return
    if summary.failed:
        err_console.print(f"[yellow]{summary.failed} documents failed to index[/]")
    table = Table(title=f"{report.dataset} ({report.queries} queries)", header_style="bold")
    table.add_column("configuration")
    for m in metrics:
        table.add_column(m, justify="right")
    table.add_column("p50 ms", justify="right")
    for result in report.results:
        cells = []
        for m in metrics:
            value = f"{result.metrics[m]:.4f}"
            if result.std:
                value += f" ± {result.std[m]:.4f}"
            cells.append(value)
        p50 = result.latency_ms["p50"]
        table.add_row(result.name, *cells, "" if p50 != p50 else f"{p50:.1f}")
    print_table(table)
    # mean rank variance across languages: only for query sets with lang/group fields
    with_mrv = any(r.mean_rank_variance is not None for r in report.results)
    columns = ["configuration", "k-occurrence skew@10", "never in top-10"]
    hub = Table(*columns, *(["MRV"] if with_mrv else []), header_style="bold", title="diagnostics")
    for result in report.results:
        row = [
            result.name,
            f"{result.hubness['skewness@10']:.2f}",
            f"{result.hubness['never_in_top10']:.1%}",
        ]
        if with_mrv:
            mrv = result.mean_rank_variance
            row.append("" if mrv is None else f"{mrv:.2f}")
        hub.add_row(*row)
    print_table(hub)
    if report.tuning is not None:
        _print_tuning(report.tuning)
    if report.precision is not None:
        _print_precision(report.precision, metrics)
    for path in written:
        err_console.print(f"wrote {path}")


def _all_pages(data: Any) -> bool:
    """Every document is a picture (ViDoRe and other page benchmarks)."""
    return all(doc.image_bytes is not None or doc.path is not None for doc in data.corpus.values())


def _print_tuning(tuning: Any) -> None:
    table = Table(title=f"fusion tuned for {tuning.metric}", header_style="bold")
    table.add_column("")
    table.add_column("setting")
    measured = list(tuning.before_metrics)
    for m in measured:
        table.add_column(m, justify="right")
    table.add_row(
        "before", tuning.before.describe(), *(f"{tuning.before_metrics[m]:.4f}" for m in measured)
    )
    table.add_row(
        "after", tuning.after.describe(), *(f"{tuning.after_metrics[m]:.4f}" for m in measured)
    )
    print_table(table)
    out_console.print(
        f"{tuning.tried} settings tried. Tuned on half the queries and scored on the other "
        f"half, {tuning.metric} is {tuning.two_fold:.4f} (before: "
        f"{tuning.before_metrics[tuning.metric]:.4f}): expect about that on new queries.",
        highlight=False,
    )
    if tuning.written:
        err_console.print(f"wrote the tuned settings to {tuning.written}")


def _print_precision(precision: Any, metrics: list[str]) -> None:
    table = Table(title=f"{precision.precision} image encoder against fp32", header_style="bold")
    for column in ("configuration", "top-10 kept", "same first hit", *(f"Δ {m}" for m in metrics)):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in precision.rows:
        changes = (f"{row.metric_change.get(m, 0.0):+.4f}" for m in metrics)
        table.add_row(
            row.configuration, f"{row.overlap_at_10:.1%}", f"{row.same_first:.1%}", *changes
        )
    print_table(table)
