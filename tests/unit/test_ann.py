"""The in-memory vector index: exact below a size, IVF above, masks for filters."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from polylens.representations.ann import VectorIndex, build_ann, load_ann, save_ann, sync_ann


def _clustered(n: int, dim: int = 64, centres: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim))
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _ids(n: int) -> pa.Array:
    return pa.array([f"v{i}" for i in range(n)])


def _truth(x: np.ndarray, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> set[int]:
    scores = x @ q
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    return set(np.argsort(-scores)[:k].tolist())


def test_exact_search_is_exact_and_ordered() -> None:
    x = _clustered(500)
    index = VectorIndex(_ids(500), matrix=x)
    rows, scores = index.search(x[7], 10)
    assert rows[0] == 7 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert set(rows.tolist()) == _truth(x, x[7], 10)
    assert np.all(np.diff(scores) <= 1e-7)


def test_ann_recall_and_filters() -> None:
    x = _clustered(3000)
    ann = build_ann(x)
    index = VectorIndex(_ids(3000), ann=ann, nprobe=8)
    rng = np.random.default_rng(1)
    queries = x[rng.integers(0, 3000, 50)] + 0.2 * rng.standard_normal((50, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    recall = np.mean(
        [len(set(index.search(q, 10)[0].tolist()) & _truth(x, q, 10)) / 10 for q in queries]
    )
    assert recall >= 0.95
    # A broad filter goes through the index with a bitmap; every hit obeys it.
    half = np.arange(3000) % 2 == 0
    rows, _ = index.search(queries[0], 10, half)
    assert len(rows) == 10 and np.all(half[rows])
    # A filter too selective for a ann walk is answered exactly.
    few = np.zeros(3000, dtype=bool)
    few[[3, 50, 900, 2999]] = True
    rows, _ = index.search(queries[0], 10, few)
    assert set(rows.tolist()) == {3, 50, 900, 2999}


def test_dead_rows_never_come_back() -> None:
    x = _clustered(2000)
    index = VectorIndex(_ids(2000), ann=build_ann(x))
    live = np.ones(2000, dtype=bool)
    live[:1000] = False
    index.live = live
    for q in x[:20]:
        rows, _ = index.search(q, 10)
        assert len(rows) == 10 and np.all(rows >= 1000)


def test_saved_ann_index_syncs_with_the_store(tmp_path) -> None:
    x = _clustered(1200)
    ids = _ids(1200)
    save_ann(tmp_path, "vec", build_ann(x[:1000]), ids[:1000])
    ann, ann_ids = load_ann(tmp_path, "vec")
    assert ann.ntotal == 1000
    # The store lost v0..v99 and gained v1000..v1199 since the ann was saved.
    store_ids = ids[100:]
    added: list[list[str]] = []

    def fetch(wanted: list[str]) -> np.ndarray:
        added.append(wanted)
        return x[[int(i[1:]) for i in wanted]]

    ann, ann_ids, live, changed = sync_ann(ann, ann_ids, store_ids, fetch)
    assert changed and added == [[f"v{i}" for i in range(1000, 1200)]]
    assert ann.ntotal == 1200 and len(ann_ids) == 1200
    assert not live[:100].any() and live[100:].all()
    index = VectorIndex(ann_ids, ann=ann)
    index.live = live
    rows, _ = index.search(x[1150], 1)
    assert ann_ids[int(rows[0])].as_py() == "v1150"


def test_a_damaged_ann_file_is_ignored(tmp_path) -> None:
    x = _clustered(100)
    save_ann(tmp_path, "vec", build_ann(x), _ids(100))
    (tmp_path / "vec.faiss").write_bytes(b"not a ann")
    assert load_ann(tmp_path, "vec") is None
