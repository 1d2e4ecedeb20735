"""The Arrow mirror a one-shot search reads instead of importing LanceDB: the same rows
as the store, never read once the store has moved, absent for large indexes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polylens.errors import StoreError
from polylens.store import mirror
from polylens.store.base import FILES, ITEMS, Filter
from polylens.store.lance import LanceStore
from polylens.store.mirror import MIRROR_DIR, open_mirror, write_mirror

VEC = "vec_text"


def _fill(store: LanceStore, n: int = 6) -> None:
    store.ensure_collection(FILES)
    store.ensure_collection(ITEMS)
    store.ensure_collection(VEC, vector_dim=4)
    kinds = ["image", "page", "text", "video"]
    items = [
        {
            "id": f"h{i % 3}:{i}",
            "content_hash": f"h{i % 3}",
            "kind": kinds[i % 4],
            "page": None,
            "chunk": i,
            "text": f"row {i}",
            "text_source": "file",
            "width": None,
            "height": None,
            "start": 1.5 * i if i % 4 == 3 else None,
            "end": None,
        }
        for i in range(n)
    ]
    store.upsert(ITEMS, items)
    rng = np.random.default_rng(0)
    store.upsert(
        VEC,
        [
            {
                **{k: r[k] for k in ("id", "content_hash", "kind")},
                "item_id": r["id"],
                "vector": rng.normal(size=4).astype(np.float32),
            }
            for r in items
        ],
    )
    store.upsert(
        FILES,
        [
            {
                "path": f"/d/f{h}",
                "content_hash": f"h{h}",
                "file_kind": "text",
                "size": 1,
                "mtime_ns": 1,
                "n_items": 2,
                "indexed_at": 0.0,
            }
            for h in range(3)
        ],
    )


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[LanceStore, Path, Path]:
    lance_dir = tmp_path / "lance"
    store = LanceStore(lance_dir)
    _fill(store)
    assert write_mirror(store, tmp_path, lance_dir)
    return store, tmp_path, lance_dir


def test_the_mirror_reads_like_the_store(indexed: tuple[LanceStore, Path, Path]) -> None:
    store, index_dir, lance_dir = indexed
    copy = open_mirror(index_dir, lance_dir)
    assert copy is not None and copy.change_token() == store.change_token()
    for where in (None, Filter(kinds=("video", "page")), Filter(content_hashes=("h1",))):
        for name in (ITEMS, VEC):
            assert copy.count(name, where) == store.count(name, where)
            assert copy.get(name, where, ["id", "kind"]) == store.get(name, where, ["id", "kind"])
    mine = copy.scan(VEC, ["id", "vector"]).to_pylist()
    theirs = store.scan(VEC, ["id", "vector"]).to_pylist()
    assert mine == theirs
    assert copy.get(FILES, Filter(paths=("/d/f2",))) == store.get(FILES, Filter(paths=("/d/f2",)))
    assert copy.distinct(ITEMS, "content_hash") == store.distinct(ITEMS, "content_hash")
    assert copy.vector_dim(VEC) == 4 and not copy.has_collection("vec_image")
    assert [r["start"] for r in copy.get(ITEMS, Filter(ids=("h0:3",)))] == [4.5]


def test_a_commit_makes_the_mirror_unreadable(indexed: tuple[LanceStore, Path, Path]) -> None:
    store, index_dir, lance_dir = indexed
    store.delete(ITEMS, Filter(ids=("h0:0",)))
    assert open_mirror(index_dir, lance_dir) is None  # stale: the reader uses the store
    assert write_mirror(store, index_dir, lance_dir)
    copy = open_mirror(index_dir, lance_dir)
    assert copy is not None and copy.count(ITEMS) == 5


def test_the_mirror_is_read_only(indexed: tuple[LanceStore, Path, Path]) -> None:
    _, index_dir, lance_dir = indexed
    copy = open_mirror(index_dir, lance_dir)
    assert copy is not None
    with pytest.raises(StoreError, match="read-only"):
        copy.upsert(ITEMS, [])
    with pytest.raises(StoreError, match="read-only"):
        copy.delete(ITEMS, Filter(ids=("x",)))


def test_large_indexes_get_no_mirror(
    indexed: tuple[LanceStore, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, index_dir, lance_dir = indexed
    monkeypatch.setattr(mirror, "MAX_ITEMS", 3)
    assert not write_mirror(store, index_dir, lance_dir)
    assert not (index_dir / MIRROR_DIR).exists() and open_mirror(index_dir, lance_dir) is None


def test_a_damaged_stamp_means_no_mirror(indexed: tuple[LanceStore, Path, Path]) -> None:
    _, index_dir, lance_dir = indexed
    (index_dir / MIRROR_DIR / "token.json").write_text("{not json")
    assert open_mirror(index_dir, lance_dir) is None
