"""Exact MaxSim and pooling."""

from __future__ import annotations

import numpy as np
import pytest
from _multivector_pages import DIM, brute, unit

from polylens.search.maxsim import maxsim, pool_segments, token_pool


# -- exact MaxSim -------------------------------------------------------------------------
def test_maxsim_matches_brute_force_loop():
    rng = np.random.default_rng(1)
    pages = [unit(rng.standard_normal((int(n), DIM))) for n in rng.integers(1, 30, 50)]
    q = unit(rng.standard_normal((7, DIM)))
    np.testing.assert_allclose(maxsim(q, pages), brute(q, pages), rtol=1e-5, atol=1e-5)
    assert maxsim(q, pages).dtype == np.float32
    # fp16 pages score as their float32 values
    half = [p.astype(np.float16) for p in pages]
    expected = brute(q, [h.astype(np.float32) for h in half])
    np.testing.assert_allclose(maxsim(q, half), expected, rtol=1e-5, atol=1e-5)


def test_maxsim_edge_cases():
    q = unit(np.ones((3, DIM)))
    assert maxsim(q, []).shape == (0,)
    one = unit(np.arange(DIM, dtype=np.float32)[None])
    assert maxsim(q, [one])[0] == pytest.approx(float((q @ one.T).sum()), rel=1e-6)
    with pytest.raises(ValueError):
        maxsim(q, [np.zeros((0, DIM), np.float32)])


# -- pooling ------------------------------------------------------------------------------
def test_pool_segments_rows_are_normalised_segment_means():
    rng = np.random.default_rng(2)
    v = unit(rng.standard_normal((12, DIM)))
    pooled = pool_segments(v, 3, method="rows")
    expected = unit(v.reshape(3, 4, DIM).mean(axis=1))
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    km = pool_segments(v, 3)
    assert km.shape == (3, DIM)
    np.testing.assert_allclose(np.linalg.norm(km, axis=1), 1.0, atol=1e-5)
    assert pool_segments(v[:2], 8).shape == (2, DIM)  # never more vectors than the page
    assert pool_segments(v[:1], 8).shape == (1, DIM)


def test_kmeans_pooling_groups_similar_vectors():
    rng = np.random.default_rng(3)
    a, b = unit(rng.standard_normal((2, DIM)))
    # two rows that each mix a and b: row means blur them, k-means separates them
    v = unit(np.stack([a] * 6 + [b] * 2 + [a] * 2 + [b] * 6) + 0.01)
    kmeans = (pool_segments(v, 2) @ np.stack([a, b]).T).max(axis=0)
    rows = (pool_segments(v, 2, method="rows") @ np.stack([a, b]).T).max(axis=0)
    assert kmeans.min() > 0.99
    assert kmeans.min() > rows.max() + 0.03


def test_token_pool_shapes_and_identity():
    rng = np.random.default_rng(4)
    v = unit(rng.standard_normal((30, DIM)))
    np.testing.assert_array_equal(token_pool(v, 1), v)
    for factor, n in [(2, 15), (3, 10), (100, 1)]:
        pooled = token_pool(v, factor)
        assert pooled.shape == (n, DIM)
        np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    # duplicated vectors collapse onto themselves
    dup = np.repeat(v[:5], 2, axis=0)
    np.testing.assert_allclose(token_pool(dup, 2), v[:5], atol=1e-6)
    assert token_pool(v[:1], 2).shape == (1, DIM)
    with pytest.raises(ValueError):
        token_pool(v, 0)
