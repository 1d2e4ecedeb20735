"""Which hits ``ask`` sends as evidence: as many as the scores say are good, no repeats.

A fixed k sends either too little (a question answered across pages) or noise that
the model then cites. As ViDoRAG does, the count comes from the score distribution: a
two-component Gaussian mixture over the candidates' calibrated confidences (in log-odds)
separates the good group from the rest, and the good group is kept, clamped by
``max_evidence``. Weak hits (below the index's ``weak_below``) never go. Pages whose
text repeats one already chosen (the same page in two PDFs, a slide deck exported
twice) count once.

The mixture is fitted here by a few lines of EM: scikit-learn is not a dependency of
polylens and its GaussianMixture would be the only thing used from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from polylens.types import Hit

DUPLICATE_OVERLAP = 0.8
"""Share of word 5-grams two texts must have in common to be the same page."""
MIN_SEPARATION = 1.0
"""Log-odds between the two groups' means below which the scores form one group."""


def choose_evidence(
    hits: Sequence[Hit],
    *,
    max_evidence: int,
    weak_below: float,
    texts: dict[str, str],
    exclude: Iterable[Hit] = (),
) -> list[Hit]:
    """The hits to send, best first. ``texts``: item id -> text, for finding repeats;
    ``exclude``: evidence already sent in an earlier round."""
    seen_ids = {hit.id for hit in exclude}
    seen_shingles = [_shingles(texts.get(hit.id, "")) for hit in exclude]
    candidates: list[Hit] = []
    for hit in hits:
        if hit.id in seen_ids:
            continue
        shingles = _shingles(texts.get(hit.id, ""))
        if shingles and any(
            _overlap(shingles, other) >= DUPLICATE_OVERLAP for other in seen_shingles
        ):
            continue
        seen_ids.add(hit.id)
        seen_shingles.append(shingles)
        candidates.append(hit)
    strong = [h for h in candidates if h.confidence is None or h.confidence >= weak_below]
    if not strong:
        return []
    keep = good_group([h.confidence for h in strong])
    return [h for h, good in zip(strong, keep, strict=True) if good][:max_evidence]


def good_group(confidences: Sequence[float | None]) -> list[bool]:
    """Which scores belong to the upper of two groups; all of them when the scores do
    not split (too few, too close, or not measured). The best one is always in."""
    if len(confidences) < 3 or any(c is None for c in confidences):
        return [True] * len(confidences)
    logits = np.array([_logit(float(c)) for c in confidences])  # type: ignore[arg-type]
    upper = _upper_component(logits)
    if upper is None:
        return [True] * len(confidences)
    keep = [bool(u) for u in upper]
    keep[int(np.argmax(logits))] = True
    return keep


def _upper_component(x: np.ndarray, iterations: int = 60) -> np.ndarray | None:
    """Posterior >= 0.5 of the higher-mean component of a 2-Gaussian mixture, or None
    when the two means end up closer than ``MIN_SEPARATION``."""
    means = np.array([x.min(), x.max()])
    if means[1] - means[0] < MIN_SEPARATION:
        return None
    floor = 0.05
    spread = np.full(2, max(x.std(), floor))
    weights = np.array([0.5, 0.5])
    for _ in range(iterations):
        density = weights * np.exp(-0.5 * ((x[:, None] - means) / spread) ** 2) / spread
        total = density.sum(axis=1, keepdims=True)
        total[total == 0] = 1e-300
        resp = density / total
        mass = resp.sum(axis=0) + 1e-9
        means = (resp * x[:, None]).sum(axis=0) / mass
        spread = np.sqrt((resp * (x[:, None] - means) ** 2).sum(axis=0) / mass)
        spread = np.maximum(spread, floor)
        weights = mass / mass.sum()
    high = int(np.argmax(means))
    if abs(means[1] - means[0]) < MIN_SEPARATION:
        return None
    return resp[:, high] >= 0.5


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _shingles(text: str) -> frozenset[int]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 12:
        return frozenset()  # too short to call two texts the same page
    return frozenset(hash(tuple(words[i : i + 5])) for i in range(len(words) - 4))


def _overlap(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))
