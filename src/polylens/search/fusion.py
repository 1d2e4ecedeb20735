"""Fusion: combine ranked lists whose raw scores are not comparable.

CLIP similarities, text-embedding cosines and BM25 scores live on different scales, so the
default fusion uses ranks only (Cormack et al., 2009), each list with a weight. The other
puts the lists on one scale first: each item's evidence as calibrated log-odds of
relevance (see :mod:`polylens.search.calibration`), summed by weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Fused:
    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(
    ranked: Mapping[str, Sequence[str]],
    *,
    weights: Mapping[str, float] | None = None,
    k: int = 60,
) -> list[Fused]:
    """Fuse ``{retriever: [id, ...best first]}`` into one list, best first.

    Ties are broken by the best single rank, then by id, so results are deterministic.
    """
    fused: dict[str, Fused] = {}
    for name, ids in ranked.items():
        weight = 1.0 if weights is None else float(weights.get(name, 1.0))
        if weight <= 0:
            continue
        for rank, item_id in enumerate(ids, start=1):
            entry = fused.get(item_id)
            if entry is None:
                entry = fused[item_id] = Fused(item_id, 0.0)
            if name in entry.ranks:
                continue  # a retriever counts an item once, at its best rank
            entry.ranks[name] = rank
            entry.score += weight / (k + rank)
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))


def evidence_fusion(
    ranked: Mapping[str, Sequence[str]],
    logits: Mapping[str, Mapping[str, float]],
    *,
    weights: Mapping[str, float],
) -> list[Fused]:
    """Score-normalised fusion: an item's score is the weighted sum of the calibrated
    log-odds each list gives it (``logits[id][name]``; a list that says nothing about the
    item is left out). Unlike reciprocal rank, a list sure of its first item and unsure of
    the rest counts for more than one whose first items are alike. Ties as in
    :func:`reciprocal_rank_fusion`."""
    fused: dict[str, Fused] = {}
    for name, ids in ranked.items():
        for rank, item_id in enumerate(ids, start=1):
            entry = fused.setdefault(item_id, Fused(item_id, 0.0))
            entry.ranks.setdefault(name, rank)
    for entry in fused.values():
        mine = logits.get(entry.id, {})
        entry.score = sum(
            float(weights.get(name, 1.0)) * value
            for name, value in mine.items()
            if float(weights.get(name, 1.0)) > 0
        )
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))
