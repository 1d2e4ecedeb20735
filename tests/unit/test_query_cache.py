"""Query embeddings are computed once and reused; the cache stays bounded."""

from __future__ import annotations

import numpy as np

from polylens.encoders.base import QueryCache
from polylens.encoders.fake import FakeText


def test_only_misses_are_computed_and_order_is_kept() -> None:
    calls: list[list[str]] = []

    def compute(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    cache = QueryCache(size=2)
    first = cache.embed(["a", "bbb"], compute, 2)
    again = cache.embed(["bbb", "cc", "a"], compute, 2)
    assert calls == [["a", "bbb"], ["cc"]]
    assert first[:, 0].tolist() == [1, 3] and again[:, 0].tolist() == [3, 2, 1]
    cache.embed(["bbb", "a"], compute, 2)  # least recently used "bbb" was evicted (size 2)
    assert calls[-1] == ["bbb"]


def test_encoders_return_the_same_vectors_from_the_cache() -> None:
    encoder = FakeText(dim=16)
    fresh = encoder._embed_all(["kites over the ridge"], query=True)
    assert np.array_equal(encoder.embed_queries(["kites over the ridge"]), fresh)
    assert np.array_equal(encoder.embed_queries(["kites over the ridge"]), fresh)
