"""In-memory BM25: the analyser, and pruned search equal to exhaustive scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polylens.representations.lexical import K1, B, Bm25Index, Vocabulary, analyse


def test_analyser_folds_stems_and_drops_stop_words() -> None:
    assert analyse("The Running of the Café's BULLS") == ["run", "cafe", "s", "bull"]
    assert analyse("") == [] and analyse("the and of") == []


def _exhaustive(texts: list[str], query: str, allowed: np.ndarray | None) -> dict[int, float]:
    docs = [analyse(t) for t in texts]
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    scores: dict[int, float] = {}
    for term in set(analyse(query)):
        df = sum(term in d for d in docs)
        if not df:
            continue
        idf = math.log1p((n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            if tf and (allowed is None or allowed[i]):
                norm = K1 * (1 - B + B * len(d) / avgdl)
                scores[i] = scores.get(i, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
    return scores


@pytest.mark.parametrize("seed", range(5))
def test_pruned_search_equals_exhaustive_scoring(seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]
    p = 1.0 / np.arange(1, 301) ** 1.1
    p /= p.sum()
    texts = [" ".join(rng.choice(words, int(rng.integers(3, 40)), p=p)) for _ in range(2000)]
    index = Bm25Index.build(Vocabulary(), [str(i) for i in range(2000)], texts)
    for q in range(20):
        query = " ".join(rng.choice(words, int(rng.integers(1, 5)), p=p))
        allowed = rng.random(2000) < 0.7 if q % 2 else None
        rows, scores = index.search(query, 10, allowed)
        truth = _exhaustive(texts, query, allowed)
        best = sorted(truth.values(), reverse=True)[:10]
        assert np.allclose(scores, best, rtol=1e-4), query
        for r, s in zip(rows, scores, strict=True):
            assert truth[int(r)] == pytest.approx(float(s), rel=1e-4)


def test_unknown_words_and_empty_index() -> None:
    index = Bm25Index.build(Vocabulary(), ["a", "b"], ["kites and gliders", ""])
    assert len(index.search("submarine", 5)[0]) == 0
    assert index.search("kite", 5)[0].tolist() == [0]
    empty = Bm25Index.build(Vocabulary(), ["x"], [""])
    assert len(empty.search("kite", 5)[0]) == 0
