"""An in-memory read model of one store version, so a query needs no store round trip
except BM25.

Built from the store in bulk (files first, then items, then vectors: a writer commits in
the opposite order, so anything a snapshot sees a file row for is complete in it), tagged
with the store's change token, and used only while that token is current. A stale
snapshot is never served: queries fall back to the store while a fresh one is built in the
background.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polylens.search.ann import (
    REBUILD_DEAD_SHARE,
    AnnSettings,
    VectorIndex,
    build_ann,
    load_ann,
    outgrown,
    save_ann,
    sync_ann,
)
from polylens.search.lexical import Bm25Index, Vocabulary
from polylens.store.base import FILES, ITEMS, VEC_IMAGE, VEC_TEXT, Filter, Store
from polylens.types import KINDS

log = logging.getLogger(__name__)

VECTOR_COLLECTIONS = (VEC_IMAGE, VEC_TEXT)
ITEM_COLUMNS = ["id", "content_hash", "kind", "page", "chunk", "text"]
_KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}


def _matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = array.type.list_size
    return array.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)


def _kind_codes(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    codes = pc.index_in(column, value_set=pa.array(KINDS, type=pa.string()))
    return pc.fill_null(codes, 255).to_numpy(zero_copy_only=False).astype(np.uint8)


@dataclass
class FilterMasks:
    """Row masks for filters over rows with a kind and a content hash, computed once per
    distinct filter (each costs passes over every row) and kept while the snapshot lives."""

    kinds: np.ndarray  # uint8 kind code per row
    hashes: pa.Array  # content hash per row
    base: np.ndarray | None = None  # rows that may ever match
    _cache: dict[Any, np.ndarray | None] = field(default_factory=dict)

    def __call__(self, where: Filter | None) -> np.ndarray | None:
        if where is None or where.is_empty():
            return self.base
        key = (where.kinds, where.content_hashes)
        if key not in self._cache:
            if len(self._cache) >= 64:
                self._cache.clear()
            self._cache[key] = self._compute(where)
        return self._cache[key]

    def _compute(self, where: Filter) -> np.ndarray:
        mask = np.ones(len(self.kinds), dtype=bool) if self.base is None else self.base.copy()
        if where.kinds is not None:
            codes = [_KIND_CODE[k] for k in where.kinds if k in _KIND_CODE]
            mask &= np.isin(self.kinds, np.array(codes, dtype=np.uint8))
        if where.content_hashes is not None:
            allowed = pa.array(list(where.content_hashes), type=pa.string())
            mask &= pc.is_in(self.hashes, value_set=allowed).to_numpy(zero_copy_only=False)
        return mask


@dataclass
class VectorView:
    """One vector collection aligned to its index's row order."""

    index: VectorIndex
    item_rows: np.ndarray  # vector row -> item row in the snapshot, -1 when unknown
    masks: FilterMasks

    def search(self, vector: np.ndarray, k: int, where: Filter | None) -> np.ndarray:
        """Item rows of the ``k`` best vectors, one entry per vector row, best first."""
        rows, _ = self.index.search(vector, k, self.masks(where))
        items = self.item_rows[rows]
        return items[items >= 0]


@dataclass
class Snapshot:
    """A :class:`polylens.search.reader.Reader` over one store version, in memory."""

    token: Hashable
    items: pa.Table
    ids: list[str]
    item_row: dict[str, int]
    paths: dict[str, list[str]]
    vectors: dict[str, VectorView]
    bm25_index: Bm25Index
    item_masks: FilterMasks
    sorted_paths: list[str] = field(default_factory=list)
    sorted_hashes: list[str] = field(default_factory=list)

    def has_vectors(self, name: str) -> bool:
        return name in self.vectors

    def nearest(self, name: str, vector: Any, k: int, where: Filter | None) -> list[str]:
        return [self.ids[row] for row in self.vectors[name].search(vector, k, where)]

    def bm25(self, text: str, k: int, where: Filter | None) -> list[str]:
        rows, _ = self.bm25_index.search(text, k, self.item_masks(where))
        return [self.ids[r] for r in rows]

    def items_and_paths(
        self, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
        positions = [self.item_row[i] for i in ids if i in self.item_row]
        rows = self.items.take(positions).to_pylist() if positions else []
        paths = {
            row["content_hash"]: self.paths[row["content_hash"]]
            for row in rows
            if row["content_hash"] in self.paths
        }
        return {row["id"]: row for row in rows}, paths

    def hashes_under(self, root: str) -> tuple[str, ...]:
        """Contents of files at or below ``root``: one contiguous range of sorted paths."""
        root = root.rstrip(os.sep) or os.sep
        found = set()
        exact = bisect.bisect_left(self.sorted_paths, root)
        if exact < len(self.sorted_paths) and self.sorted_paths[exact] == root:
            found.add(self.sorted_hashes[exact])
        below = root if root.endswith(os.sep) else root + os.sep
        start = bisect.bisect_left(self.sorted_paths, below)
        stop = bisect.bisect_left(self.sorted_paths, below[:-1] + chr(ord(os.sep) + 1))
        found.update(self.sorted_hashes[start:stop])
        return tuple(sorted(found))


def build_snapshot(
    store: Store, ann_dir: Path, settings: AnnSettings, token: Hashable, vocabulary: Vocabulary
) -> Snapshot:
    paths: dict[str, list[str]] = {}
    sorted_paths: list[str] = []
    sorted_hashes: list[str] = []
    if store.has_collection(FILES):
        files = store.scan(FILES, ["path", "content_hash"]).sort_by("path")
        sorted_paths = files.column("path").to_pylist()
        sorted_hashes = files.column("content_hash").to_pylist()
        for path, content_hash in zip(sorted_paths, sorted_hashes, strict=True):
            paths.setdefault(content_hash, []).append(path)
    if store.has_collection(ITEMS):
        items = store.scan(ITEMS, ITEM_COLUMNS).combine_chunks()
    else:
        items = pa.table({c: pa.array([], type=pa.string()) for c in ITEM_COLUMNS})
    ids = items.column("id").to_pylist()
    item_row = {item_id: row for row, item_id in enumerate(ids)}
    item_ids = pa.array(ids, type=pa.string())
    bm25 = Bm25Index.build(vocabulary, ids, items.column("text").to_pylist())
    vocabulary.forget_except(set(item_row))
    vectors = {}
    for name in VECTOR_COLLECTIONS:
        if store.has_collection(name):
            vectors[name] = _vector_view(store, name, ann_dir, settings, item_ids)
    return Snapshot(
        token=token,
        items=items,
        ids=ids,
        item_row=item_row,
        paths=paths,
        vectors=vectors,
        bm25_index=bm25,
        item_masks=FilterMasks(_kind_codes(items.column("kind")), items.column("content_hash")),
        sorted_paths=sorted_paths,
        sorted_hashes=sorted_hashes,
    )


def _vector_view(
    store: Store, name: str, ann_dir: Path, settings: AnnSettings, item_ids: pa.Array
) -> VectorView:
    if store.count(name) < settings.min_rows:
        table = store.scan(name, ["id", "item_id", "content_hash", "kind", "vector"])
        index = VectorIndex(
            table.column("id").combine_chunks(),
            matrix=_matrix(table.column("vector")),
            nprobe=settings.nprobe,
        )
        aligned = table.select(["item_id", "content_hash", "kind"]).combine_chunks()
    else:
        meta = store.scan(name, ["id", "item_id", "content_hash", "kind"]).combine_chunks()
        index = open_ann(store, name, ann_dir, settings, meta.column("id"), save=False)
        positions = pc.index_in(index.ids, value_set=meta.column("id"))
        aligned = meta.select(["item_id", "content_hash", "kind"]).take(pc.fill_null(positions, 0))
        dead = pc.is_null(positions).to_numpy(zero_copy_only=False)
        index.live &= ~dead
    item_rows = pc.fill_null(pc.index_in(aligned.column("item_id"), value_set=item_ids), -1)
    item_rows = item_rows.to_numpy(zero_copy_only=False).astype(np.int64)
    masks = FilterMasks(
        _kind_codes(aligned.column("kind")),
        aligned.column("content_hash").combine_chunks(),
        base=item_rows >= 0,
    )
    return VectorView(index=index, item_rows=item_rows, masks=masks)


def open_ann(
    store: Store,
    name: str,
    ann_dir: Path,
    settings: AnnSettings,
    store_ids: pa.ChunkedArray | pa.Array,
    *,
    save: bool,
) -> VectorIndex:
    """The saved ANN index of ``name`` brought up to the store's rows (built if missing,
    mostly dead or outgrown); written back when ``save`` (writers only)."""
    if isinstance(store_ids, pa.ChunkedArray):
        store_ids = store_ids.combine_chunks()

    def fetch(ids: list[str]) -> np.ndarray:
        table = store.scan(name, ["id", "vector"], Filter(ids=tuple(ids)))
        order = pc.index_in(pa.array(ids, type=pa.string()), value_set=table.column("id"))
        return _matrix(table.column("vector").take(order))

    saved = load_ann(ann_dir, name)
    if saved is not None:
        ann, ann_ids, live, changed = sync_ann(*saved, store_ids, fetch)
        index = VectorIndex(ann_ids, ann=ann, nprobe=settings.nprobe)
        index.live = live
        if index.dead_share <= REBUILD_DEAD_SHARE and not outgrown(ann):
            if save and changed:
                save_ann(ann_dir, name, ann, ann_ids)
            return index
        log.info("rebuilding the ANN index of %s (%.0f%% dead)", name, 100 * index.dead_share)
    log.info("building the ANN index of %s over %d vectors", name, len(store_ids))
    table = store.scan(name, ["id", "vector"])
    ann = build_ann(_matrix(table.column("vector")))
    ann_ids = table.column("id").combine_chunks()
    if save:
        save_ann(ann_dir, name, ann, ann_ids)
    return VectorIndex(ann_ids, ann=ann, nprobe=settings.nprobe)


def refresh_saved_ann(store: Store, ann_dir: Path, settings: AnnSettings) -> None:
    """After a write: bring saved ANN indexes up to date so readers load them without rebuilding."""
    for name in VECTOR_COLLECTIONS:
        if not store.has_collection(name):
            continue
        ids = store.scan(name, ["id"]).column("id")
        if len(ids) >= settings.min_rows:
            open_ann(store, name, ann_dir, settings, ids, save=True)


class SnapshotKeeper:
    """Holds the current snapshot; rebuilds it in a background thread when the store moves.

    ``current()`` costs one change-token read and never blocks on a build.
    """

    def __init__(
        self,
        store: Store,
        ann_dir: Path,
        settings: AnnSettings,
        *,
        min_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.ann_dir = ann_dir
        self.settings = settings
        self.min_interval = min_interval
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._last_build = 0.0
        self.vocabulary = Vocabulary()

    def current(self, *, start_build: bool = True) -> Snapshot | None:
        token = self.store.change_token()
        if token is None:
            return None
        snapshot = self._snapshot
        if snapshot is not None and snapshot.token == token:
            return snapshot
        if start_build:
            self._start_background()
        return None

    def build_now(self) -> Snapshot | None:
        """Build synchronously (server start-up, benchmarks, tests)."""
        with self._lock:
            token = self.store.change_token()
            if token is None:
                return None
            if self._snapshot is None or self._snapshot.token != token:
                self._snapshot = build_snapshot(
                    self.store, self.ann_dir, self.settings, token, self.vocabulary
                )
            self._last_build = time.monotonic()
            return self._snapshot

    def _start_background(self) -> None:
        if self._building is not None and self._building.is_alive():
            return
        if time.monotonic() - self._last_build < self.min_interval:
            return
        self._building = threading.Thread(target=self._build, name="polylens-snapshot", daemon=True)
        self._building.start()

    def _build(self) -> None:
        try:
            self.build_now()
        except Exception as exc:  # noqa: BLE001 - queries keep working from the store
            log.warning("could not build the in-memory read model: %s", exc)

    def wait(self, timeout: float | None = None) -> None:
        thread = self._building
        if thread is not None:
            thread.join(timeout)
