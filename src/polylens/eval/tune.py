"""Fusion tuned on a user's own judgments: ``polylens eval DATA --tune``.

Each query is searched once; every candidate setting (method, a weight per representation,
the RRF constant) then only re-fuses the lists already retrieved, so hundreds of settings
cost seconds. The best by the chosen metric is written to the index's ``polylens.toml``.
Tuning on the queries it is scored on flatters it, so a two-fold estimate is reported too:
the setting tuned on half the queries, scored on the other half, both ways.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from polylens.config import CONFIG_FILE, load_config
from polylens.errors import InputError
from polylens.eval.datasets import EvalDataset, Qrels, Run
from polylens.eval.runner import NO_RESULT, score
from polylens.meta import write_text_atomic
from polylens.representations.base import Ranked
from polylens.search.calibration import item_logits
from polylens.search.fusion import evidence_fusion, reciprocal_rank_fusion
from polylens.search.query_image import query_image
from polylens.search.searcher import SearchRequest

WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
RRF_KS = (10, 30, 60, 120)


@dataclass(frozen=True)
class FusionSetting:
    method: str
    weights: dict[str, float]
    rrf_k: int

    def describe(self) -> str:
        weights = ", ".join(f"{n} {w:g}" for n, w in self.weights.items())
        k = f", k {self.rrf_k}" if self.method == "rrf" else ""
        return f"{self.method} ({weights}{k})"


@dataclass
class TuneReport:
    metric: str
    before: FusionSetting
    after: FusionSetting
    before_metrics: dict[str, float]
    after_metrics: dict[str, float]
    two_fold: float
    """The metric of a setting tuned on one half of the queries, scored on the other."""
    tried: int
    changes: dict[str, Any] = field(default_factory=dict)
    """The settings written to polylens.toml."""
    written: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Query:
    lists: dict[str, Ranked]
    logits: dict[str, dict[str, float]]
    docs: dict[str, str]  # item id -> doc id


def tune_fusion(
    index: Any,
    dataset: EvalDataset,
    paths_to_docs: dict[str, str],
    *,
    metric: str = "ndcg@10",
    metrics: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100"),
    depth: int = 100,
) -> TuneReport:
    searcher = index._searcher()  # noqa: SLF001 - eval drives the searcher it measures
    config = index.config
    # the representations that can answer (one whose model is unavailable has no lists)
    keys = {
        b.name: b.rep.weight_key
        for b in searcher.bound
        if b.rep.weight_key and searcher._ready(b)  # noqa: SLF001
    }
    if len(keys) < 2:
        raise InputError("tuning fusion needs an index with two or more representations")
    queries = {
        qid: _prepare(searcher, config, query, paths_to_docs, depth)
        for qid, query in dataset.queries.items()
    }
    current = FusionSetting(
        config.fusion, {n: float(getattr(config, k)) for n, k in keys.items()}, config.rrf_k
    )
    candidates = _candidates(list(keys))
    qids = list(queries)
    halves = (qids[0::2], qids[1::2])

    objective = _objective(metric, dataset.qrels)

    def value(setting: FusionSetting, subset: list[str]) -> float:
        run = _run(setting, queries, subset, depth)
        if objective is not None:
            return sum(objective(qid, run[qid]) for qid in subset) / max(1, len(subset))
        return score(_subset(dataset.qrels, subset), run, [metric])[metric]

    best = max(candidates, key=lambda s: (value(s, qids), s == current))
    two_fold = []
    for tune_on, check_on in (halves, halves[::-1]):
        if tune_on and check_on:
            chosen = max(candidates, key=lambda s, q=tune_on: (value(s, q), s == current))
            two_fold.append(value(chosen, check_on))
    measured = list(dict.fromkeys([metric, *metrics]))
    before = score(dataset.qrels, _run(current, queries, qids, depth), measured)
    after = score(dataset.qrels, _run(best, queries, qids, depth), measured)
    changes: dict[str, Any] = {"fusion": best.method, "rrf_k": best.rrf_k}
    changes |= {keys[n]: w for n, w in best.weights.items()}
    return TuneReport(
        metric=metric,
        before=current,
        after=best,
        before_metrics=before,
        after_metrics=after,
        two_fold=sum(two_fold) / len(two_fold) if two_fold else float("nan"),
        tried=len(candidates),
        changes=changes,
    )


def write_tuned(index_dir: Path, report: TuneReport) -> Path:
    """The tuned settings into ``polylens.toml`` (the file's other settings kept)."""
    config = load_config(index_dir).replace(**report.changes)
    path = index_dir / CONFIG_FILE
    write_text_atomic(path, config.to_toml())
    report.written = str(path)
    return path


def _prepare(
    searcher: Any, config: Any, query: Any, paths_to_docs: dict[str, str], depth: int
) -> _Query:
    image = query_image(query.image, config) if query.image is not None else None
    lists = searcher.lists(SearchRequest(text=query.text or None, image=image, k=depth))
    ids = list({i for answer in lists.values() for i in answer.ids})
    items, paths = searcher.reader.items_and_paths(ids)
    docs: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for item_id, item in items.items():
        kinds[item_id] = item["kind"]
        for path in sorted(paths.get(item["content_hash"], ())):
            if path in paths_to_docs:
                docs[item_id] = paths_to_docs[path]
                break
    return _Query(lists, item_logits(lists, kinds), docs)


def _candidates(names: list[str]) -> list[FusionSetting]:
    """Every weight combination up to scale (the first nonzero weight 1... by dividing),
    with each RRF constant, and with score-normalised fusion."""
    seen: set[tuple[float, ...]] = set()
    weightings: list[dict[str, float]] = []
    for combo in itertools.product(WEIGHTS, repeat=len(names)):
        top = max(combo)
        if top == 0:
            continue
        key = tuple(round(w / top, 3) for w in combo)
        if key in seen:
            continue
        seen.add(key)
        weightings.append(dict(zip(names, combo, strict=True)))
    out = [FusionSetting("rrf", w, k) for w in weightings for k in RRF_KS]
    out += [FusionSetting("normalised", w, 60) for w in weightings]
    return out


def _run(setting: FusionSetting, queries: dict[str, _Query], qids: list[str], depth: int) -> Run:
    run: Run = {}
    for qid in qids:
        q = queries[qid]
        ranked = {n: a.ids for n, a in q.lists.items()}
        weights = {n: setting.weights.get(n, 1.0) for n in ranked}
        if setting.method == "normalised":
            fused = evidence_fusion(ranked, q.logits, weights=weights)
        else:
            fused = reciprocal_rank_fusion(ranked, weights=weights, k=setting.rrf_k)
        docs: dict[str, float] = {}
        for entry in fused:
            doc = q.docs.get(entry.id)
            if doc is not None and doc not in docs:
                docs[doc] = float(len(fused) - len(docs))
                if len(docs) >= depth:
                    break
        run[qid] = docs or {NO_RESULT: 0.0}
    return run


def _objective(metric: str, qrels: Qrels) -> Any:
    """A per-query scorer for nDCG@k, MRR@k or Recall@k (None for other metrics: ranx
    scores those). By hand because ranx costs a tenth of a second a call in setting up,
    and the search scores hundreds of settings three times; the before/after numbers
    reported are ranx's."""
    name, _, cut = metric.partition("@")
    if name not in ("ndcg", "mrr", "recall") or not cut.isdigit():
        return None
    k = int(cut)

    def one(qid: str, ranked: dict[str, float]) -> float:
        judged = {d: g for d, g in qrels.get(qid, {}).items() if g > 0}
        if not judged:
            return 0.0
        top = sorted(ranked, key=lambda d: -ranked[d])[:k]
        if name == "mrr":
            return next((1.0 / r for r, d in enumerate(top, start=1) if d in judged), 0.0)
        if name == "recall":
            return sum(d in judged for d in top) / len(judged)
        gain = sum(judged.get(d, 0) / math.log2(r + 1) for r, d in enumerate(top, start=1))
        ideal = sorted(judged.values(), reverse=True)[:k]
        best = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
        return gain / best if best > 0 else 0.0

    return one


def _subset(qrels: Qrels, qids: list[str]) -> Qrels:
    return {q: qrels[q] for q in qids if q in qrels}


__all__ = ["FusionSetting", "TuneReport", "tune_fusion", "write_tuned"]
