from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polylens.errors import StoreError
from polylens.store.base import FILES, ITEMS, Filter
from polylens.store.lance import LanceStore

VEC_TEXT = "vec_text"


def _item(i: int, kind: str, text: str, h: str = "h") -> dict:
    return {
        "id": f"{h}:{i}",
        "content_hash": h,
        "kind": kind,
        "page": None,
        "chunk": i,
        "text": text,
        "text_source": "file",
        "width": None,
        "height": None,
    }


@pytest.fixture
def store(tmp_path: Path) -> LanceStore:
    s = LanceStore(tmp_path / "lance")
    for name in (FILES, ITEMS):
        s.ensure_collection(name)
    s.ensure_collection(VEC_TEXT, vector_dim=3)
    return s


def test_upsert_replaces_by_key(store: LanceStore) -> None:
    store.upsert(ITEMS, [_item(0, "text", "first")])
    store.upsert(ITEMS, [_item(0, "text", "second"), _item(1, "page", "other")])
    assert store.count(ITEMS) == 2
    assert store.get(ITEMS, Filter(ids=("h:0",)))[0]["text"] == "second"


def test_filters_and_large_in_lists(store: LanceStore) -> None:
    store.upsert(ITEMS, [_item(i, "text" if i % 2 else "page", f"t {i}") for i in range(1000)])
    assert store.count(ITEMS, Filter(kinds=("page",))) == 500
    ids = tuple(f"h:{i}" for i in range(0, 1000, 2))
    assert len(store.get(ITEMS, Filter(ids=ids + ("h:1",), kinds=("page",)))) == 500
    assert store.count(ITEMS, Filter(ids=())) == 0
    store.delete(ITEMS, Filter(ids=ids))
    assert store.count(ITEMS) == 500


def test_quotes_in_values_are_safe(store: LanceStore) -> None:
    row = {
        "path": '/tmp/it\'s "odd"; DROP',
        "content_hash": "x",
        "file_kind": "text",
        "size": 1,
        "mtime_ns": 1,
        "n_items": 0,
        "indexed_at": 0.0,
    }
    store.upsert(FILES, [row])
    assert store.get(FILES, Filter(paths=(row["path"],)))[0]["path"] == row["path"]


def test_empty_delete_is_refused(store: LanceStore) -> None:
    with pytest.raises(StoreError):
        store.delete(ITEMS, Filter())


def test_bm25_stems_and_filters(store: LanceStore) -> None:
    store.upsert(
        ITEMS,
        [
            _item(0, "text", "supersonic flow over swept wings"),
            _item(1, "page", "the wing of a bird"),
            _item(2, "text", "a cat on a mat"),
        ],
    )
    hits = store.search_text(ITEMS, "wing", 10)
    assert {h.row["id"] for h in hits} == {"h:0", "h:1"}
    hits = store.search_text(ITEMS, "wing", 10, Filter(kinds=("page",)))
    assert [h.row["id"] for h in hits] == ["h:1"]


def test_vector_search_is_cosine_and_filtered(store: LanceStore) -> None:
    rows = []
    for i, v in enumerate([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0]]):
        v = np.asarray(v, dtype=np.float32)
        rows.append(
            {
                "id": f"v{i}",
                "item_id": f"h:{i}",
                "content_hash": "h",
                "kind": "page" if i == 2 else "text",
                "vector": v / np.linalg.norm(v),
            }
        )
    store.upsert(VEC_TEXT, rows)
    hits = store.search_vector(VEC_TEXT, np.array([1, 0, 0], dtype=np.float32), 2)
    assert [h.row["id"] for h in hits] == ["v0", "v1"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    hits = store.search_vector(
        VEC_TEXT, np.array([1, 0, 0], dtype=np.float32), 5, Filter(kinds=("page",))
    )
    assert [h.row["id"] for h in hits] == ["v2"]


def test_ann_index_is_built_when_big_enough(tmp_path: Path) -> None:
    s = LanceStore(tmp_path / "lance")
    s.ensure_collection(VEC_TEXT, vector_dim=8)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(600, 8)).astype(np.float32)
    s.upsert(
        VEC_TEXT,
        [
            {"id": str(i), "item_id": str(i), "content_hash": "h", "kind": "text", "vector": v}
            for i, v in enumerate(vecs)
        ],
    )
    s.optimize(ann_min_rows=500)
    table = s._table(VEC_TEXT)
    assert any("vector" in idx.columns for idx in table.list_indices())
    hits = s.search_vector(VEC_TEXT, vecs[42], 1)
    assert hits[0].row["id"] == "42"


def test_an_index_made_before_the_video_columns_reads_and_gains_them(tmp_path: Path) -> None:
    import lancedb
    import pyarrow as pa

    from polylens.store.schema import ITEMS_SCHEMA

    old = pa.schema([f for f in ITEMS_SCHEMA if f.name not in ("start", "end")])
    db = lancedb.connect(tmp_path)
    db.create_table(ITEMS, data=pa.Table.from_pylist([_item(0, "image", "cat")], schema=old))
    reader = LanceStore(tmp_path)  # a reader never writes: the columns read as null
    assert reader.get(ITEMS)[0]["start"] is None
    assert reader.scan(ITEMS, ["id", "start", "end"]).column("end").to_pylist() == [None]
    writer = LanceStore(tmp_path)
    writer.ensure_collection(ITEMS)
    writer.upsert(ITEMS, [{**_item(1, "video", "cut"), "start": 2.5, "end": 4.0}])
    rows = {r["id"]: r for r in writer.get(ITEMS)}
    assert (rows["h:1"]["start"], rows["h:1"]["end"]) == (2.5, 4.0)
    assert rows["h:0"]["start"] is None and rows["h:0"]["text"] == "cat"
