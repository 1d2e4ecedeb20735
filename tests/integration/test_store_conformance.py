"""One suite, every store: the same semantics (keys, filters, deletes, schemas, change
tokens), ranking on a fixed small corpus, and the crash invariant (a batch written twice,
as a re-run after a kill writes it, leaves one copy) for the embedded LanceDB store and
Qdrant's local mode, in memory and on disk; against a real Qdrant server or cluster too
when ``POLYLENS_QDRANT_URL`` names one (``qdrant://HOST:PORT?...``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from polylens.errors import IndexMismatchError, StoreError
from polylens.representations.lexical import Bm25Index, Vocabulary
from polylens.store.base import FILES, ITEMS, Filter, Store
from polylens.store.locations import open_store
from polylens.store.schema import representation_schema

VEC = "vec_text"
HASHES = "hashes"

_KINDS = ["lance", "qdrant+memory", "qdrant+local"]
if os.environ.get("POLYLENS_QDRANT_URL"):
    _KINDS.append("qdrant-server")


def _spec(kind: str, tmp_path: Path) -> str:
    if kind == "lance":
        return ""
    if kind == "qdrant+memory":
        return "qdrant+memory:"
    if kind == "qdrant+local":
        return f"qdrant+local:{tmp_path / 'qdrant'}"
    url = os.environ["POLYLENS_QDRANT_URL"]  # a fresh prefix per test: nothing shared
    return f"{url}{'&' if '?' in url else '?'}prefix=t{uuid.uuid4().hex[:12]}_"


@pytest.fixture(params=_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(_spec(request.param, tmp_path), tmp_path / "idx", tmp_path / "lance")
    for name in (FILES, ITEMS):
        s.ensure_collection(name)
    s.ensure_collection(VEC, vector_dim=3)
    yield s
    if request.param == "qdrant-server":
        for name in (FILES, ITEMS, VEC, HASHES):
            s.drop_collection(name)
    s.close()


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
        "start": None,
        "end": None,
    }


def _file(path: str, h: str = "x") -> dict:
    return {
        "path": path,
        "content_hash": h,
        "file_kind": "text",
        "size": 1,
        "mtime_ns": 1,
        "n_items": 0,
        "indexed_at": 0.0,
    }


def _vec(i: int, v: list[float], kind: str = "text") -> dict:
    a = np.asarray(v, dtype=np.float32)
    return {
        "id": f"v{i}",
        "item_id": f"h:{i}",
        "content_hash": "h",
        "kind": kind,
        "vector": a / np.linalg.norm(a),
    }


def test_upsert_replaces_by_key(store: Store) -> None:
    store.upsert(ITEMS, [_item(0, "text", "first")])
    store.upsert(ITEMS, [_item(0, "text", "second"), _item(1, "page", "other")])
    assert store.count(ITEMS) == 2
    assert store.get(ITEMS, Filter(ids=("h:0",)))[0]["text"] == "second"
    store.upsert(FILES, [_file("/a", "x"), _file("/a", "y")][:1])
    store.upsert(FILES, [_file("/a", "y")])
    assert [r["content_hash"] for r in store.get(FILES)] == ["y"]


def test_a_batch_written_twice_leaves_one_copy(store: Store) -> None:
    """The crash invariant: a run killed after a commit it did not record writes that
    batch again; keyed upserts must converge."""
    batch = [_item(i, "text", f"passage {i}") for i in range(50)]
    store.upsert(ITEMS, batch)
    store.upsert(ITEMS, batch)
    assert store.count(ITEMS) == 50
    assert sorted(r["id"] for r in store.get(ITEMS, None, ["id"])) == sorted(r["id"] for r in batch)


def test_filters_and_large_in_lists(store: Store) -> None:
    store.upsert(ITEMS, [_item(i, "text" if i % 2 else "page", f"t {i}") for i in range(1500)])
    assert store.count(ITEMS, Filter(kinds=("page",))) == 750
    ids = tuple(f"h:{i}" for i in range(0, 1500, 2))
    assert len(store.get(ITEMS, Filter(ids=ids + ("h:1",), kinds=("page",)))) == 750
    assert store.count(ITEMS, Filter(ids=())) == 0
    assert store.get(ITEMS, Filter(content_hashes=("nope",))) == []
    store.delete(ITEMS, Filter(ids=ids))
    assert store.count(ITEMS) == 750
    assert store.count(ITEMS, Filter(kinds=("page",))) == 0


def test_get_and_scan_keep_types_and_columns(store: Store) -> None:
    store.upsert(ITEMS, [{**_item(0, "video", "a cut"), "start": 2.5, "end": 4.0, "page": 3}])
    row = store.get(ITEMS, None, ["id", "page", "start"])[0]
    assert row == {"id": "h:0", "page": 3, "start": 2.5}
    table = store.scan(ITEMS, ["id", "kind", "end", "width"])
    assert table.column_names == ["id", "kind", "end", "width"]
    assert table.schema.field("end").type == pa.float64()
    assert table.to_pylist() == [{"id": "h:0", "kind": "video", "end": 4.0, "width": None}]
    store.upsert(VEC, [_vec(0, [1, 2, 2])])
    vectors = store.scan(VEC, ["id", "vector"])
    assert vectors.schema.field("vector").type == pa.list_(pa.float32(), 3)
    np.testing.assert_allclose(
        vectors.column("vector")[0].as_py(), [1 / 3, 2 / 3, 2 / 3], rtol=1e-6
    )


def test_quotes_in_values_are_safe(store: Store) -> None:
    row = _file('/tmp/it\'s "odd"; DROP')
    store.upsert(FILES, [row])
    assert store.get(FILES, Filter(paths=(row["path"],)))[0]["path"] == row["path"]
    store.delete(FILES, Filter(paths=(row["path"],)))
    assert store.count(FILES) == 0


def test_empty_delete_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        store.delete(ITEMS, Filter())


def test_collections_with_their_own_schema(store: Store) -> None:
    schema = representation_schema(
        pa.field("hash", pa.int64(), nullable=False), pa.field("blob", pa.large_binary())
    )
    assert not store.has_collection(HASHES)
    store.ensure_collection(HASHES, schema=schema)
    assert store.has_collection(HASHES)
    row = {
        "id": "p0",
        "item_id": "h:0",
        "content_hash": "h",
        "kind": "image",
        "hash": -(2**62),
        "blob": b"\x00\xffpatch",
    }
    store.upsert(HASHES, [row])
    assert store.get(HASHES) == [row]
    assert store.distinct(HASHES, "kind") == {"image"}
    store.drop_collection(HASHES)
    assert not store.has_collection(HASHES)
    assert store.get(HASHES) == []


def test_vector_dimension_is_kept_and_checked(store: Store) -> None:
    assert store.vector_dim(VEC) == 3
    assert store.vector_dim("missing") is None
    if store.searches_itself:  # a server's collection outlives this index's settings
        with pytest.raises(IndexMismatchError, match="3-dimensional"):
            store.ensure_collection(VEC, vector_dim=4)


def test_change_token_moves_with_every_write(store: Store) -> None:
    first = store.change_token()
    store.upsert(ITEMS, [_item(0, "text", "a")])
    second = store.change_token()
    assert second != first
    assert store.change_token() == second  # reads leave it alone
    store.delete(ITEMS, Filter(ids=("h:0",)))
    assert store.change_token() != second


def test_vector_search_is_cosine_and_filtered(store: Store) -> None:
    store.upsert(VEC, [_vec(0, [1, 0, 0]), _vec(1, [0.9, 0.1, 0]), _vec(2, [0, 1, 0], "page")])
    hits = store.search_vector(VEC, np.array([1, 0, 0], dtype=np.float32), 2)
    assert [h.row["id"] for h in hits] == ["v0", "v1"]
    assert [h.row["item_id"] for h in hits] == ["h:0", "h:1"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-5)
    hits = store.search_vector(
        VEC, np.array([1, 0, 0], dtype=np.float32), 5, Filter(kinds=("page",))
    )
    assert [h.row["id"] for h in hits] == ["v2"]


def test_bm25_stems_and_filters(store: Store) -> None:
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
    assert store.search_text(ITEMS, "the of", 10) == []  # stop words only


_CORPUS = [
    "boundary layer transition on a flat plate at supersonic speed",
    "heat transfer in hypersonic boundary layers with ablation",
    "buckling of thin cylindrical shells under axial compression",
    "the flutter of panels in supersonic flow",
    "a note on the theory of plates and shells",
    "laminar boundary layer separation near a trailing edge",
    "vibration of cantilever plates of varying thickness",
    "hypersonic flow past blunt bodies: shock detachment distance",
]


def test_bm25_ranks_as_the_in_memory_index(store: Store) -> None:
    """A store that ranks BM25 itself ranks this corpus exactly as polylens's own BM25
    (same analyser, same IDF and length norm); the embedded store is LanceDB's FTS,
    which this only asks to find the same documents."""
    store.upsert(ITEMS, [_item(i, "text", t) for i, t in enumerate(_CORPUS)])
    ids = [f"h:{i}" for i in range(len(_CORPUS))]
    reference = Bm25Index.build(Vocabulary(), ids, _CORPUS)
    for query in ("supersonic boundary layer", "plates shells", "hypersonic blunt shock", "drones"):
        rows, scores = reference.search(query, 5)
        hits = store.search_text(ITEMS, query, 5)
        if not store.searches_itself:
            assert {h.row["id"] for h in hits} <= set(ids)
            continue
        assert [h.row["id"] for h in hits] == [ids[r] for r in rows], query
        np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-4)
        assert store.text_attainable(ITEMS, query) == pytest.approx(
            reference.attainable(query), rel=1e-4
        )


def test_sample_is_fixed_and_bounded(store: Store) -> None:
    store.upsert(VEC, [_vec(i, [1, i, 0]) for i in range(40)])
    first = store.sample(VEC, 16, ["id", "kind", "vector"])
    assert first.num_rows == 16 and len(set(first.column("id").to_pylist())) == 16
    assert (
        store.sample(VEC, 16, ["id", "kind", "vector"]).column("id").to_pylist()
        == first.column("id").to_pylist()
    )
    assert store.sample(VEC, 100, ["id"]).num_rows == 40
