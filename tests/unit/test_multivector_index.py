"""The three-stage MultiVectorIndex: staged search equals exact, filters, delete/add/save."""

from __future__ import annotations

import numpy as np
import pytest
from _multivector_pages import DIM, clustered_pages, exact_top, query_about, unit

from polylens.search.maxsim import maxsim
from polylens.search.multivector_index import MultiVectorIndex
from polylens.search.patch_store import PatchStore


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pages = clustered_pages(400)
    store = PatchStore.from_pages(tmp_path_factory.mktemp("store"), pages)
    index = MultiVectorIndex.build(store, segments=8, nlist=16, nprobe=16, token_k=4000)
    return pages, index


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


def test_generations_share_one_patch_store_and_readers_change_nothing(tmp_path):
    """Saved without copying its store, two generations name one append-only store; a
    reader hides pages appended after its generation (never truncates a writer's files)
    and keeps reading once its files are removed."""
    import shutil

    pages = clustered_pages(60, seed=3)
    store = PatchStore.from_pages(tmp_path / "patches-1", pages[:40])
    index = MultiVectorIndex.build(store, segments=4, nlist=4)
    index.save(tmp_path / "gen-1", copy_patches=False)
    assert not (tmp_path / "gen-1" / PatchStore.VECTORS).exists()
    # a writer appends 20 pages and saves them as gen-2; gen-1's reader sees only its 40
    writer = MultiVectorIndex.load(tmp_path / "gen-1")
    writer.add(pages[40:])
    writer.save(tmp_path / "gen-2", copy_patches=False)
    old = MultiVectorIndex.load(tmp_path / "gen-1", writable=False)
    new = MultiVectorIndex.load(tmp_path / "gen-2", writable=False)
    assert len(old) == 40 and len(new) == 60
    assert len(PatchStore.open(tmp_path / "patches-1")) == 60  # the reader truncated nothing
    q = query_about(pages[7], 0)
    np.testing.assert_array_equal(old.search(q, 5)[0], exact_top(q, pages[:40], 5))
    with pytest.raises(PermissionError):
        old.add(pages[:1])
    # the writer's folders go (a compaction); the open reader still answers
    shutil.rmtree(tmp_path / "gen-1")
    shutil.rmtree(tmp_path / "patches-1")
    np.testing.assert_array_equal(new.search(q, 5)[0], exact_top(q, pages, 5))
    np.testing.assert_array_equal(new.search(q, 5, exact=True)[0], exact_top(q, pages, 5))
