"""Run a dataset's queries through an index, per search configuration, and score them.

Metrics come from ranx; the diagnostics (hubness, mean rank variance) are ours because no
library computes them on runs. Every report carries what is needed to reproduce it.
"""

from __future__ import annotations

import importlib.metadata
import platform
import random
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polylens._lazy import import_or_raise
from polylens.engine import Index
from polylens.errors import InputError
from polylens.eval.datasets import EvalDataset, Qrels, Run

DEFAULT_METRICS = (
    "ndcg@10",
    "recall@1",
    "recall@5",
    "recall@10",
    "recall@100",
    "mrr@10",
    "map@100",
)
CURVE_KS = (1, 2, 5, 10, 20, 50, 100)
NO_RESULT = "__no_result__"

# Configurations: "hybrid" is what `polylens search` does (every representation the
# queries reach), "hybrid-text" fuses the text ones, and each representation alone has its
# own (its ``eval_name``: bm25, dense-text, dense-image, ...).
CONFIGS = ("hybrid", "hybrid-text")

_PACKAGES = (
    "polylens",
    "lancedb",
    "torch",
    "transformers",
    "sentence-transformers",
    "rapidocr-onnxruntime",
    "pypdfium2",
    "ranx",
    "numpy",
)


@dataclass
class ConfigResult:
    name: str
    retrievers: tuple[str, ...]
    metrics: dict[str, float]
    std: dict[str, float] = field(default_factory=dict)
    recall_curve: dict[int, float] = field(default_factory=dict)
    hubness: dict[str, float] = field(default_factory=dict)
    mean_rank_variance: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalReport:
    dataset: str
    source: str
    queries: int
    documents: int
    results: list[ConfigResult]
    environment: dict[str, Any]
    runs: dict[str, Run] = field(default_factory=dict, repr=False)
    tuning: Any = None
    """What ``--tune`` found (a :class:`polylens.eval.tune.TuneReport`), or None."""
    precision: Any = None
    """What ``--precision`` changed (a :class:`polylens.eval.precision.PrecisionReport`)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("runs")
        if self.precision is not None:
            data["precision"] = self.precision.to_dict()
        return data


def available_configs(index: Index, dataset: EvalDataset) -> dict[str, tuple[str, ...]]:
    """Configurations the index can serve for this dataset's queries, without duplicates."""
    store = index._store  # noqa: SLF001 - evaluation inspects what the index holds
    lineup, meta = index._lineup, index._meta  # noqa: SLF001
    text_queries = any(q.text for q in dataset.queries.values())
    reach = "text" if text_queries else "image"  # image-only queries otherwise
    have = [
        rep
        for rep in lineup.recorded(meta)
        if rep.answers(reach) and (rep.collection is None or store.count(rep.collection) > 0)
    ]
    out: dict[str, tuple[str, ...]] = {}
    seen: set[frozenset[str]] = set()

    def offer(name: str, reps: list[Any], minimum: int = 1) -> None:
        names = tuple(rep.name for rep in reps)
        if len(names) >= minimum and frozenset(names) not in seen:
            seen.add(frozenset(names))
            out[name] = names

    offer("hybrid", have, minimum=2)
    offer("hybrid-text", [rep for rep in have if rep.modality == "text"], minimum=2)
    # Alone: lexical before learned, text before image.
    for rep in sorted(have, key=lambda r: (r.modality != "text", r.model_key is not None)):
        offer(rep.eval_name, [rep])
    return out


def run_queries(
    index: Index,
    dataset: EvalDataset,
    paths_to_docs: dict[str, str],
    retrievers: Sequence[str],
    *,
    depth: int = 100,
    latencies: list[float] | None = None,
    rerank: bool = True,
) -> Run:
    """Document-level run: a document's rank is that of its best item (page, passage)."""
    run: Run = {}
    for qid, query in dataset.queries.items():
        started = time.perf_counter()
        hits = index.search(
            query.text or None,
            image=query.image,
            k=depth * 3,
            retrievers=retrievers,
            rerank=rerank,
        )
        if latencies is not None:
            latencies.append((time.perf_counter() - started) * 1000.0)
        ranked: dict[str, float] = {}
        for hit in hits:
            for path in (hit.path, *hit.other_paths):
                doc = paths_to_docs.get(path)
                if doc is not None and doc not in ranked:
                    # Scores encode our order exactly (fused scores can tie).
                    ranked[doc] = float(depth * 3 - len(ranked))
            if len(ranked) >= depth:
                break
        run[qid] = ranked or {NO_RESULT: 0.0}
    return run


def score(qrels: Qrels, run: Run, metrics: Sequence[str]) -> dict[str, float]:
    ranx = import_or_raise("ranx", extra="eval")
    judged = {q: d for q, d in qrels.items() if q in run}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes about ranx internals
        result = ranx.evaluate(
            ranx.Qrels(judged), ranx.Run(run), list(metrics), make_comparable=True
        )
    if isinstance(result, float):
        result = {metrics[0]: result}
    return {name: float(value) for name, value in result.items()}


def hubness(run: Run, corpus_ids: Sequence[str], k: int = 10) -> dict[str, float]:
    """Skewness of the k-occurrence distribution, and share of the corpus never retrieved."""
    counts = dict.fromkeys(corpus_ids, 0)
    for ranked in run.values():
        top = sorted(ranked.items(), key=lambda kv: -kv[1])[:k]
        for doc, _ in top:
            if doc in counts:
                counts[doc] += 1
    values = np.array(list(counts.values()), dtype=np.float64)
    if values.size == 0 or values.std() == 0:
        return {
            f"skewness@{k}": 0.0,
            f"never_in_top{k}": float((values == 0).mean() if values.size else 0),
        }
    centred = values - values.mean()
    skew = float((centred**3).mean() / values.std() ** 3)
    return {f"skewness@{k}": skew, f"never_in_top{k}": float((values == 0).mean())}


def mean_rank_variance(dataset: EvalDataset, run: Run, depth: int) -> float | None:
    """Mean over query groups of the std of the correct item's rank across languages."""
    groups: dict[str, list[str]] = {}
    for qid, query in dataset.queries.items():
        if query.group is not None and query.lang is not None:
            groups.setdefault(query.group, []).append(qid)
    spreads = []
    for qids in groups.values():
        if len(qids) < 2:
            continue
        ranks = []
        for qid in qids:
            relevant = {d for d, g in dataset.qrels.get(qid, {}).items() if g > 0}
            ordered = [d for d, _ in sorted(run.get(qid, {}).items(), key=lambda kv: -kv[1])]
            rank = next((i for i, d in enumerate(ordered, start=1) if d in relevant), depth + 1)
            ranks.append(rank)
        spreads.append(statistics.pstdev(ranks))
    return float(np.mean(spreads)) if spreads else None


def environment(index: Index, seed: int, repeat: int) -> dict[str, Any]:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    meta = index._meta  # noqa: SLF001
    return {
        "seed": seed,
        "repeat": repeat,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "models": {
            **{name: asdict(record) for name, record in (meta.representations or {}).items()},
            "ocr": "rapidocr-onnxruntime" if index.config.ocr else None,
        },
        "index_config": asdict(index.config),
        "index_path": str(index.path),
    }


def evaluate_index(
    index: Index,
    dataset: EvalDataset,
    paths_to_docs: dict[str, str],
    *,
    configs: Sequence[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    repeat: int = 1,
    seed: int = 0,
    depth: int = 100,
    on_config: Callable[[str], None] | None = None,
) -> EvalReport:
    if repeat < 1:
        raise InputError("repeat must be at least 1")
    random.seed(seed)
    np.random.seed(seed)
    offered = available_configs(index, dataset)
    if not offered:
        raise InputError(
            "no search configuration of this index can answer these queries (image queries "
            "need an image-text model)"
        )
    chosen = list(configs) if configs else list(offered)
    known = {*CONFIGS, *(rep.eval_name for rep in index._lineup.registry_reps())}  # noqa: SLF001
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise InputError(
            f"unknown configuration(s) {unknown}; choose from {', '.join(sorted(known))}"
        )
    unavailable = [c for c in chosen if c not in offered]
    if unavailable:
        raise InputError(
            f"configuration(s) {unavailable} need representations this index lacks; "
            f"available: {', '.join(offered)}"
        )
    curve_metrics = [f"recall@{k}" for k in CURVE_KS]
    results: list[ConfigResult] = []
    runs: dict[str, Run] = {}
    jobs = [(name, offered[name], False) for name in chosen]
    if _has_reranker(index):
        # the reranker's gain: the first configuration again, re-ordered by it
        jobs.insert(1, (f"{chosen[0]}+rerank", offered[chosen[0]], True))
    for name, retrievers, rerank in jobs:
        if on_config:
            on_config(name)
        samples: list[dict[str, float]] = []
        latencies: list[float] = []
        run: Run = {}
        for _ in range(repeat):
            run = run_queries(
                index,
                dataset,
                paths_to_docs,
                retrievers,
                depth=depth,
                latencies=latencies,
                rerank=rerank,
            )
            samples.append(score(dataset.qrels, run, metrics))
        mean = {m: float(np.mean([s[m] for s in samples])) for m in samples[0]}
        std = {m: float(np.std([s[m] for s in samples])) for m in samples[0]} if repeat > 1 else {}
        curve = score(dataset.qrels, run, curve_metrics)
        results.append(
            ConfigResult(
                name=name,
                retrievers=retrievers,
                metrics=mean,
                std=std,
                recall_curve={int(m.split("@")[1]): v for m, v in curve.items()},
                hubness=hubness(run, list(dataset.corpus)),
                mean_rank_variance=mean_rank_variance(dataset, run, depth),
                latency_ms={
                    "p50": float(np.percentile(latencies, 50)),
                    "p99": float(np.percentile(latencies, 99)),
                },
            )
        )
        runs[name] = run
    return EvalReport(
        dataset=dataset.name,
        source=dataset.source,
        queries=len(dataset.queries),
        documents=len(dataset.corpus),
        results=results,
        environment=environment(index, seed, repeat),
        runs=runs,
    )


def _has_reranker(index: Index) -> bool:
    """Whether the index's settings name a reranker; one that cannot load is an error
    here (its rows would silently equal the others)."""
    if index.config.rerank.strip().lower() in ("", "none", "off"):
        return False
    warning = index._reranker()["rerank_warning"]  # noqa: SLF001
    if warning:
        raise InputError(warning)
    return True


def add_external_run(
    report: EvalReport, dataset: EvalDataset, name: str, run: Run, metrics: Sequence[str]
) -> ConfigResult:
    """Score a run made elsewhere (a TREC file) beside polylens's own configurations."""
    judged = {q: r for q, r in run.items() if q in dataset.queries}
    for qid in dataset.queries:
        judged.setdefault(qid, {NO_RESULT: 0.0})
    result = ConfigResult(
        name=name,
        retrievers=(),
        metrics=score(dataset.qrels, judged, metrics),
        recall_curve={
            int(m.split("@")[1]): v
            for m, v in score(dataset.qrels, judged, [f"recall@{k}" for k in CURVE_KS]).items()
        },
        hubness=hubness(judged, list(dataset.corpus)),
        mean_rank_variance=mean_rank_variance(dataset, judged, 100),
        latency_ms={"p50": float("nan"), "p99": float("nan")},
    )
    report.results.append(result)
    return result


def write_outputs(report: EvalReport, out: Path, *, plot: bool = True) -> list[Path]:
    """report.json, one TREC run per configuration, and recall@k curves as a PNG."""
    import json

    from polylens.eval.datasets import write_trec_run

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    for name, run in report.runs.items():
        if name.startswith("run:"):
            continue
        path = out / f"run.{name}.trec"
        write_trec_run(
            {q: r for q, r in run.items() if NO_RESULT not in r}, path, f"polylens-{name}"
        )
        written.append(path)
    if plot:
        written.append(plot_recall(report, out / "recall_at_k.png"))
    return written


def plot_recall(report: EvalReport, path: Path) -> Path:
    import_or_raise("matplotlib", extra="eval")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for result in report.results:
        ks = sorted(result.recall_curve)
        ax.plot(ks, [result.recall_curve[k] for k in ks], marker="o", label=result.name)
    ax.set_xscale("log")
    ax.set_xticks(list(CURVE_KS), [str(k) for k in CURVE_KS])
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{report.dataset}: recall@k ({report.queries} queries, {report.documents} docs)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
