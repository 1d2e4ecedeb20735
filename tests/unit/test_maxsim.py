"""Exact MaxSim, pooling, the patch store and the three-stage MultiVectorIndex."""

from __future__ import annotations

import numpy as np
import pytest

from polylens.search.maxsim import (
    MultiVectorIndex,
    PatchStore,
    maxsim,
    pool_segments,
    token_pool,
)

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered_pages(n: int, seed: int = 0, lengths: tuple[int, int] = (4, 40)) -> list:
    """Pages made of a few topical regions plus shared 'blank' vectors."""
    rng = np.random.default_rng(seed)
    concepts = unit(rng.standard_normal((60, DIM)))
    blank = unit(rng.standard_normal(DIM))
    pages = []
    for _ in range(n):
        length = int(rng.integers(*lengths))
        own = rng.choice(60, 3, replace=False)
        src = np.where(rng.random(length)[:, None] < 0.3, blank, concepts[rng.choice(own, length)])
        pages.append(unit(src + 0.4 * rng.standard_normal((length, DIM)) / np.sqrt(DIM)))
    return pages


def query_about(page: np.ndarray, seed: int, m: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = np.asarray(page, np.float32)[rng.integers(0, len(page), m)]
    return unit(picks + 0.5 * rng.standard_normal(picks.shape) / np.sqrt(DIM))


def brute(query: np.ndarray, pages: list) -> np.ndarray:
    out = []
    for page in pages:
        total = 0.0
        for t in np.asarray(query, np.float64):
            total += max(float(t @ np.asarray(v, np.float64)) for v in page)
        out.append(total)
    return np.array(out)


def exact_top(query: np.ndarray, pages: list, k: int, allowed=None) -> np.ndarray:
    scores = brute(query, [np.asarray(p, np.float16).astype(np.float32) for p in pages])
    if allowed is not None:
        scores[~allowed] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[: min(k, int(np.isfinite(scores).sum()))]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pages = clustered_pages(400)
    store = PatchStore.from_pages(tmp_path_factory.mktemp("store"), pages)
    index = MultiVectorIndex.build(store, segments=8, nlist=16, nprobe=16, token_k=4000)
    return pages, index


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


# -- the patch store ----------------------------------------------------------------------
def test_patch_store_append_head_truncate(tmp_path):
    pages = clustered_pages(5, seed=5)
    store = PatchStore.create(tmp_path, DIM)
    assert len(store) == 0 and store.vectors.shape == (0, DIM)
    np.testing.assert_array_equal(store.append(pages[:3]), [0, 1, 2])
    np.testing.assert_array_equal(store.append(pages[3:]), [3, 4])
    reopened = PatchStore.open(tmp_path)
    assert len(reopened) == 5
    for i, p in enumerate(pages):
        np.testing.assert_array_equal(reopened.page(i), p.astype(np.float16))
    assert isinstance(reopened.vectors, np.memmap)
    vecs, starts = reopened.gather(np.array([4, 1]))
    np.testing.assert_array_equal(vecs[starts[1] :], pages[1].astype(np.float16))
    reopened.prefetch(np.array([0, 3]))  # a hint to the kernel: no visible effect
    reopened.release()  # drops the memory map; the next read maps the file again
    np.testing.assert_array_equal(reopened.page(3), pages[3].astype(np.float16))
    view = reopened.head(2)
    assert len(view) == 2
    with pytest.raises(PermissionError):
        view.append(pages[:1])
    reopened.truncate(3)
    assert len(PatchStore.open(tmp_path)) == 3
    with pytest.raises(ValueError):
        store.append([np.zeros((0, DIM), np.float32)])


# -- the index ----------------------------------------------------------------------------
def test_staged_search_equals_exact(corpus):
    pages, index = corpus
    for seed in range(8):
        q = query_about(pages[seed * 37], seed)
        rows, scores = index.search(q, 10, candidates=120, shortlist=400)
        np.testing.assert_array_equal(rows, exact_top(q, pages, 10))
        # the scores are exact MaxSim over the stored (fp16) vectors
        stored = [np.asarray(index.patches.page(int(r))) for r in rows]
        np.testing.assert_allclose(scores, maxsim(q, stored), rtol=1e-5)
        assert np.all(np.diff(scores) <= 0)
        # exhaustive mode agrees
        ex_rows, ex_scores = index.search(q, 10, exact=True)
        np.testing.assert_array_equal(ex_rows, rows)
        np.testing.assert_allclose(ex_scores, scores, rtol=1e-6)


def test_first_stage_finds_the_source_page(corpus):
    pages, index = corpus
    hits = 0
    for seed in range(20):
        q = query_about(pages[seed * 19], seed)
        rows, _ = index.first_stage(q, 20)
        hits += seed * 19 in rows
    assert hits >= 19


def test_live_mask_filters(corpus):
    pages, index = corpus
    allowed = np.zeros(len(pages), bool)
    allowed[::3] = True
    q = query_about(pages[30], 11)
    rows, _ = index.search(q, 10, live=allowed, candidates=120, shortlist=400)
    assert allowed[rows].all()
    np.testing.assert_array_equal(rows, exact_top(q, pages, 10, allowed))
    # a narrow filter (fewer allowed pages than candidates) is answered exhaustively
    narrow = np.zeros(len(pages), bool)
    narrow[[5, 17, 200]] = True
    rows, _ = index.search(q, 10, live=narrow)
    np.testing.assert_array_equal(rows, exact_top(q, pages, 10, narrow))
    assert len(index.search(q, 10, live=np.zeros(len(pages), bool))[0]) == 0
    with pytest.raises(ValueError):
        index.search(q, 10, live=np.ones(3, bool))


def test_delete_add_save_load(tmp_path):
    pages = clustered_pages(300, seed=7)
    store = PatchStore.from_pages(tmp_path / "src", pages[:250])
    index = MultiVectorIndex.build(store, segments=4, nlist=8, nprobe=8, token_k=2000)
    q = query_about(pages[40], 3)
    top = index.search(q, 5, candidates=100, shortlist=250)[0]
    assert top[0] == 40
    index.delete(top[:2])
    assert index.n_live == 248
    rows, _ = index.search(q, 5, candidates=100, shortlist=250)
    assert not set(top[:2]) & set(rows)
    allowed = np.ones(250, bool)
    allowed[top[:2]] = False
    np.testing.assert_array_equal(rows, exact_top(q, pages[:250], 5, allowed))

    new_rows = index.add(pages[250:])
    np.testing.assert_array_equal(new_rows, np.arange(250, 300))
    assert len(index) == 300 and index.n_live == 298
    q2 = query_about(pages[280], 4)
    rows2, scores2 = index.search(q2, 10, candidates=100, shortlist=300)
    allowed = np.ones(300, bool)
    allowed[top[:2]] = False
    np.testing.assert_array_equal(rows2, exact_top(q2, pages, 10, allowed))

    index.save(tmp_path / "idx")
    loaded = MultiVectorIndex.load(tmp_path / "idx")
    assert isinstance(loaded.patches.vectors, np.memmap)
    assert len(loaded) == 300 and loaded.n_live == 298
    for qq in (q, q2):
        a = index.search(qq, 10, candidates=100, shortlist=300)
        b = loaded.search(qq, 10, candidates=100, shortlist=300)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    parts = loaded.nbytes
    assert parts["patches_disk"] == sum(len(p) for p in pages) * DIM * 2
    assert parts["first_stage_ram"] > 0 and parts["pooled_ram"] == 300 * 4 * DIM * 2

    # saving in place, after an add, keeps one store; pages added but never saved are dropped
    loaded.add(pages[:1])
    loaded.save(tmp_path / "idx")
    assert len(MultiVectorIndex.load(tmp_path / "idx")) == 301
    loaded.add(pages[1:2])
    assert len(MultiVectorIndex.load(tmp_path / "idx")) == 301


def test_empty_index_tiny_pages_and_k_beyond_n(tmp_path):
    empty = MultiVectorIndex.build(PatchStore.create(tmp_path / "e", DIM))
    q = unit(np.ones((4, DIM)))
    rows, scores = empty.search(q, 10)
    assert rows.shape == (0,) and scores.shape == (0,)
    assert empty.first_stage(q, 10)[0].shape == (0,)
    empty.save(tmp_path / "e")
    assert len(MultiVectorIndex.load(tmp_path / "e")) == 0

    # an index built empty trains its first stage on the first pages it gets
    pages = clustered_pages(30, seed=9, lengths=(1, 6))
    pages[3] = pages[3][:1]  # a page with one vector
    rows = empty.add(pages)
    assert len(rows) == 30 and empty.first is not None
    got, scores = empty.search(q, 100)  # k > n: every page, best first
    assert sorted(got) == list(range(30))
    np.testing.assert_array_equal(got, exact_top(q, pages, 100))
    q3 = query_about(pages[3], 1, m=3)
    assert empty.search(q3, 1, candidates=5, shortlist=10)[0][0] == 3
    assert empty.search(q3, 0)[0].shape == (0,)
