"""Shared by bench/calibrate.py and bench/no_match.py: a Cranfield index, query sets, and
the per-hit evidence the searcher computes (read through its internals, since users only
see the confidence made from it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NO_MATCH = HERE / "data" / "no_match"
CRANFIELD = REPO.parent / "shared" / "data" / "cranfield"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def split_half(rows: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    """``fit``: even positions, ``check``: odd ones, ``all``: every row. Curves are fitted on
    one half of each hand-written unanswerable set and checked on the other."""
    if part == "all":
        return rows
    return rows[0::2] if part == "fit" else rows[1::2]


def cranfield_index(work: Path, data: Path = CRANFIELD) -> tuple[Any, Any, dict[str, str]]:
    """(open index, dataset, {absolute path: doc id}) for the development half of Cranfield,
    indexed as a notes folder with the default offline settings (no image-text model)."""
    import polylens
    from polylens.eval.datasets import load_beir
    from polylens.eval.materialize import materialize

    dataset = load_beir(data, "dev")
    mapping = materialize(dataset, work / "corpus")
    index = polylens.open(work / "index", image_model="none")
    index.add([work / "corpus"])
    return index, dataset, mapping


@dataclass
class Scored:
    """One hit of one query: what calibration reads and what it is judged by."""

    query: str
    rank: int
    evidence: dict[str, float]
    relevant: bool
    confidence: float | None


def scored_hits(
    index: Any, text: str, judge: Any, k: int = 10, query_id: str = ""
) -> Iterator[Scored]:
    """The top ``k`` hits of ``text`` with their evidence; ``judge(hit) -> bool``."""
    from polylens.search.calibration import evidence_of

    searcher = index._searcher()
    results = index.search(text, k=k)
    lists = _lists(searcher, text)
    for rank, hit in enumerate(results, start=1):
        yield Scored(
            query=query_id or text,
            rank=rank,
            evidence=evidence_of(hit.sources, lists, hit.kind),
            relevant=bool(judge(hit)),
            confidence=hit.confidence,
        )


def _lists(searcher: Any, text: str) -> dict[str, Any]:
    from polylens.representations.base import Query
    from polylens.store.base import Filter

    query = Query(text=text, image=None, item_id=None, text_share=1.0, image_digest=None)
    return searcher._retrieve(query, searcher.bound, 50, Filter())


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Weights (last: intercept) of a logistic regression, by Newton's method. Twenty lines
    instead of scikit-learn, which nothing else here needs."""
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + l2 * w
        hess = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mine = which == b
        if mine.any():
            error += mine.mean() * abs(p[mine].mean() - y[mine].mean())
    return float(error)
