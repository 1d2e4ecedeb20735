"""Confidence: the probability that a hit is relevant, from evidence the index measures itself.

Fused reciprocal-rank scores say which hit is better, not whether any is good. Each
representation instead reports *evidence* per hit, already normalised against this index's
own background for the query (dense: standard deviations above the query's mean cosine over
a sample of the index; BM25: the share of the query's attainable score matched), so the
same evidence means the same thing on a fresh index of anyone's data. A logistic curve per
kind of evidence maps it to the log-odds of relevance; several lists' log-odds are averaged
by weight and recalibrated once more. The curves are fitted by ``bench/calibrate.py`` on
judged queries and unanswerable ones (see ``calibration.json`` beside this file for what
they were fitted on); a hit's confidence is then comparable across queries and indexes.

Why by hand: the fit is ordinary logistic regression, but applying it needs the evidence
of lists an item is missing from (a list's last evidence bounds what it would have had),
which no library models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from polylens.representations.base import Ranked

PINNED_CONFIDENCE = 0.99
"""An exact or near copy of the query image is what was asked for."""


@dataclass(frozen=True)
class Curve:
    """log-odds of relevance = slope * evidence + intercept."""

    slope: float
    intercept: float

    def logit(self, evidence: float) -> float:
        return self.slope * evidence + self.intercept


@dataclass(frozen=True)
class Calibration:
    curves: dict[str, Curve]
    weights: dict[str, float] = field(default_factory=dict)
    """How much each curve's log-odds counts when several lists found a hit."""
    scale: float = 1.0
    bias: float = 0.0
    """Recalibration of the weighted mean when two or more lists contribute."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        curves = {name: Curve(**c) for name, c in data["curves"].items()}
        combined = data.get("combined", {})
        return cls(
            curves=curves,
            weights={k: float(v) for k, v in data.get("weights", {}).items()},
            scale=float(combined.get("scale", 1.0)),
            bias=float(combined.get("bias", 0.0)),
        )

    def combine(self, evidence: Mapping[str, float]) -> float | None:
        """Confidence from ``{curve: evidence}`` (None when no curve is known)."""
        logits = [
            (self.weights.get(name, 1.0), self.curves[name].logit(value))
            for name, value in evidence.items()
            if name in self.curves
        ]
        if not logits:
            return None
        if len(logits) == 1:
            return _sigmoid(logits[0][1])
        total = sum(w for w, _ in logits) or 1.0
        mean = sum(w * x for w, x in logits) / total
        return _sigmoid(self.scale * mean + self.bias)


@cache
def default_calibration() -> Calibration:
    text = resources.files("polylens.search").joinpath("calibration.json").read_text("utf-8")
    return Calibration.from_dict(json.loads(text))


def list_evidence(
    rank_in: Mapping[str, int], lists: Mapping[str, Ranked], kind: str | None = None
) -> dict[str, tuple[str, float]]:
    """Per list name: (its curve, the evidence it gives the item), by the rules of
    :func:`evidence_of` (which merges lists that share a curve)."""
    out: dict[str, tuple[str, float]] = {}
    for name, answer in lists.items():
        if answer.curve is None or answer.pinned:
            continue
        if kind is not None and answer.kinds is not None and kind not in answer.kinds:
            continue
        rank = rank_in.get(name)
        evidence = answer.evidence
        if evidence and rank is not None and rank <= len(evidence):
            value = evidence[rank - 1]
        elif evidence:
            value = evidence[-1]
        elif answer.curve == "bm25":
            value = 0.0
        else:
            continue
        out[name] = (answer.curve, value)
    return out


def list_logits(
    rank_in: Mapping[str, int],
    lists: Mapping[str, Ranked],
    kind: str | None = None,
    calibration: Calibration | None = None,
) -> dict[str, float]:
    """Per list name, the calibrated log-odds of relevance it gives the item."""
    calibration = calibration or default_calibration()
    return {
        name: calibration.curves[curve].logit(value)
        for name, (curve, value) in list_evidence(rank_in, lists, kind).items()
        if curve in calibration.curves
    }


def item_logits(
    lists: Mapping[str, Ranked], kinds: Mapping[str, str] | None = None
) -> dict[str, dict[str, float]]:
    """Per item any list ranked, per list, the log-odds it gives the item (``kinds``: item
    kinds, for lists restricted to some): what score-normalised fusion sums."""
    positions = {n: {i: r for r, i in enumerate(a.ids, start=1)} for n, a in lists.items()}
    ids = {i for answer in lists.values() for i in answer.ids}
    kinds = kinds or {}
    return {
        item_id: list_logits(
            {n: p[item_id] for n, p in positions.items() if item_id in p},
            lists,
            kinds.get(item_id),
        )
        for item_id in ids
    }


def evidence_of(
    rank_in: Mapping[str, int],
    lists: Mapping[str, Ranked],
    kind: str | None = None,
) -> dict[str, float]:
    """The evidence each list with a curve gives for one item: its own where it ranked the
    item; else the list's last evidence (an item past a list's end scores at most that),
    or zero (a BM25 list that matched nothing: the query's words are not here). A list
    that did not rank items of the item's ``kind`` (pictures only, for a text query in
    image space) says nothing about it."""
    out: dict[str, float] = {}
    for curve, value in list_evidence(rank_in, lists, kind).values():
        previous = out.get(curve)
        out[curve] = value if previous is None else max(previous, value)
    return out


def confidence_of(
    item_id: str,
    rank_in: Mapping[str, int],
    lists: Mapping[str, Ranked],
    calibration: Calibration | None = None,
    *,
    kind: str | None = None,
) -> float | None:
    """The item's confidence in [0, 1], or None when no list carries evidence."""
    if any(answer.pinned and item_id in answer.ids for answer in lists.values()):
        return PINNED_CONFIDENCE
    calibration = calibration or default_calibration()
    value = calibration.combine(evidence_of(rank_in, lists, kind))
    return None if value is None else round(value, 4)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


__all__ = [
    "Calibration",
    "Curve",
    "confidence_of",
    "default_calibration",
    "evidence_of",
    "item_logits",
    "list_evidence",
    "list_logits",
]
