"""What every single-vector representation shares: a vector collection (one or more rows per
item), its read-model part (exact below a size, a saved FAISS IVF index above), and nearest
neighbours answered the same way from the store or from memory (cosine, best first)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polylens.encoders.registry import ModelRegistry
from polylens.meta import ModelRecord
from polylens.representations.ann import (
    REBUILD_DEAD_SHARE,
    AnnSettings,
    VectorIndex,
    ann_paths,
    build_ann,
    load_ann,
    outgrown,
    save_ann,
    sync_ann,
)
from polylens.representations.base import BuildContext, Representation, SearchContext
from polylens.representations.masks import FilterMasks
from polylens.store.base import Filter, Store

log = logging.getLogger(__name__)


def matrix_of(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = array.type.list_size
    return array.values.to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)


@dataclass
class VectorView:
    """One vector collection aligned to its index's row order."""

    index: VectorIndex
    item_rows: np.ndarray  # vector row -> item row in the read model, -1 when unknown
    masks: FilterMasks
    item_ids: list[str]
    bank: np.ndarray | None = None
    """A fixed random sample of the collection's vectors: the background a query's scores
    are measured against (see :meth:`DenseRepresentation.evidence`)."""
    bank_kinds: np.ndarray | None = None
    """The item kind of each bank row (a search restricted to kinds is measured against
    those kinds: text passages sit closer to a text query than any picture does)."""

    def nearest(
        self, vector: np.ndarray, k: int, where: Filter | None
    ) -> tuple[list[str], list[float]]:
        """Item ids and cosines of the ``k`` best vectors, one per vector row, best first."""
        rows, scores = self.index.search(vector, k, self.masks(where))
        items = self.item_rows[rows]
        known = items >= 0
        return [self.item_ids[i] for i in items[known]], scores[known].tolist()


@dataclass
class ServerVectors:
    """A collection its store searches (Qdrant): nothing of it is held here but the
    background bank, read once per store version."""

    store: Store
    name: str
    bank: np.ndarray | None
    bank_kinds: np.ndarray | None

    def nearest(
        self, vector: np.ndarray, k: int, where: Filter | None
    ) -> tuple[list[str], list[float]]:
        hits = self.store.search_vector(self.name, vector, k, where)
        return [h.row["item_id"] for h in hits], [h.score for h in hits]


BANK_ROWS = 1024
"""Vectors in a background bank: enough for a query's mean and spread over the index to
within a few per cent, cheap enough (a 1024 x dim product) to compute per query."""


def background_bank(
    store: Store, name: str, index: VectorIndex, kinds: pa.ChunkedArray | pa.Array
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A fixed-seed sample of the live vectors and their kinds (None below two rows):
    from the exact matrix, or read back through an ANN index's direct map (from the store
    if it has none). ``kinds``: the kind of every index row."""
    live = np.flatnonzero(index.live)
    if len(live) < 2:
        return None, None
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(live, size=min(BANK_ROWS, len(live)), replace=False))
    bank_kinds = np.asarray(kinds.take(pa.array(pick)).to_pylist(), dtype=object)
    if index.matrix is not None:
        return np.ascontiguousarray(index.matrix[pick]), bank_kinds
    try:  # fp16 vectors read back: close enough for a mean and a spread
        vectors = index.ann.reconstruct_batch(pick.astype(np.int64))
        return np.ascontiguousarray(vectors, dtype=np.float32), bank_kinds
    except (AttributeError, RuntimeError):
        pass
    ids = index.ids.take(pa.array(pick))
    table = store.scan(name, ["id", "vector"], Filter(ids=tuple(ids.to_pylist())))
    order = pc.index_in(ids, value_set=table.column("id"))
    found = ~pc.is_null(order).to_numpy(zero_copy_only=False)
    if found.sum() < 2:
        return None, None
    vectors = matrix_of(table.column("vector").take(pc.drop_null(order)))
    return vectors, bank_kinds[found]


class DenseRepresentation(Representation):
    """A model's vectors in ``collection``; ``model_role`` picks its alias table."""

    def canonical(self, registry: ModelRegistry, name: str) -> str:
        return registry.canonical(self.model_role, name)  # type: ignore[arg-type]

    def holds_data(self, record: ModelRecord) -> bool:
        return record.resolved != "none" and record.dim is not None

    def ensure_storage(self, store: Store, model: Any) -> None:
        assert self.collection is not None
        store.ensure_collection(self.collection, vector_dim=model.dim)

    def nearest(
        self, ctx: SearchContext, vector: Any, k: int, where: Filter | None
    ) -> tuple[list[str], list[float]]:
        """Item ids and cosines, best first. Without a read model the same search runs
        over the store's vectors (or the saved ANN index), not LanceDB's own vector
        search: its kernels round differently and near-ties came out in another order."""
        part = ctx.part if ctx.part is not None else self.part_from_store(ctx)
        return part.nearest(vector, k, where)

    def evidence(
        self, ctx: SearchContext, vector: Any, scores: list[float], where: Filter | None
    ) -> list[float] | None:
        """Each score in standard deviations above the query's mean cosine over the
        background bank. Raw cosines are not comparable across queries (some queries sit
        close to everything) or models (each has its own cosine range); how far a hit
        stands out from what this query scores against the index at large is."""
        part = ctx.part if ctx.part is not None else self.part_from_store(ctx)
        bank, kinds = getattr(part, "bank", None), getattr(part, "bank_kinds", None)
        if bank is None or not scores:
            return None
        if where is not None and where.kinds and kinds is not None:
            mine = np.isin(kinds, list(where.kinds))
            if mine.sum() >= 16:
                bank = bank[mine]
        sims = bank @ np.asarray(vector, dtype=np.float32).reshape(-1)
        spread = max(float(sims.std()), 1e-3)
        return ((np.asarray(scores, dtype=np.float64) - float(sims.mean())) / spread).tolist()

    def load_store_part(self, ctx: SearchContext) -> VectorView | ServerVectors:
        assert self.collection is not None
        if ctx.store.searches_itself:
            return _server_vectors(ctx.store, self.collection)
        settings = AnnSettings(min_rows=ctx.config.ann_min_rows, nprobe=ctx.config.ann_nprobe)
        directory = ann_dir(ctx.index_dir) if ctx.index_dir else None
        index, rows = _load_vectors(ctx.store, self.collection, settings, directory)
        bank, bank_kinds = background_bank(ctx.store, self.collection, index, rows.column("kind"))
        return VectorView(
            index=index,
            item_rows=np.arange(len(rows), dtype=np.int64),
            masks=FilterMasks.of(rows),
            item_ids=rows.column("item_id").to_pylist(),
            bank=bank,
            bank_kinds=bank_kinds,
        )

    def stored_vector(self, ctx: SearchContext, item_id: str) -> Any:
        """The item's own vector (its first, for items with several), or None."""
        assert self.collection is not None
        if not ctx.store.has_collection(self.collection):
            return None
        rows = ctx.store.get(self.collection, Filter(ids=(item_id,)), ["vector"])
        return rows[0]["vector"] if rows else None

    # -- read model and derived files ------------------------------------------------
    def build_part(self, ctx: BuildContext) -> VectorView | None:
        assert self.collection is not None
        if not ctx.store.has_collection(self.collection):
            return None
        directory = ann_dir(ctx.index_dir)
        index, rows = _load_vectors(ctx.store, self.collection, ctx.ann, directory)
        item_rows = pc.fill_null(pc.index_in(rows.column("item_id"), value_set=ctx.item_ids), -1)
        item_rows = item_rows.to_numpy(zero_copy_only=False).astype(np.int64)
        bank, bank_kinds = background_bank(ctx.store, self.collection, index, rows.column("kind"))
        return VectorView(
            index=index,
            item_rows=item_rows,
            masks=FilterMasks.of(rows, base=item_rows >= 0),
            item_ids=ctx.ids,
            bank=bank,
            bank_kinds=bank_kinds,
        )

    def after_write(self, ctx: BuildContext) -> None:
        """Bring the saved ANN index up to date, so readers load it without rebuilding."""
        name = self.collection
        assert name is not None
        if ctx.store.searches_itself or not ctx.store.has_collection(name):
            return
        ids = ctx.store.scan(name, ["id"]).column("id")
        if len(ids) >= ctx.ann.min_rows:
            open_ann(ctx.store, name, ann_dir(ctx.index_dir), ctx.ann, ids, save=True)

    def drop(self, store: Store, index_dir: Path) -> None:
        super().drop(store, index_dir)
        assert self.collection is not None
        for path in ann_paths(ann_dir(index_dir), self.collection):
            path.unlink(missing_ok=True)


def _server_vectors(store: Store, name: str) -> ServerVectors:
    sample = (
        store.sample(name, BANK_ROWS, ["kind", "vector"]) if store.has_collection(name) else None
    )
    if sample is None or sample.num_rows < 2:
        return ServerVectors(store, name, None, None)
    kinds = np.asarray(sample.column("kind").to_pylist(), dtype=object)
    return ServerVectors(store, name, matrix_of(sample.column("vector")), kinds)


ANN_DIR = "ann"


def ann_dir(index_dir: Path) -> Path:
    return index_dir / ANN_DIR


def _load_vectors(
    store: Store, name: str, settings: AnnSettings, directory: Path | None
) -> tuple[VectorIndex, pa.Table]:
    """The collection's vectors in a searchable index (an exact matrix below
    ``min_rows``, else the saved ANN index brought up to date), and its rows (item id,
    content hash, kind) in the index's row order."""
    columns = ["id", "item_id", "content_hash", "kind"]
    if store.count(name) < settings.min_rows:
        table = store.scan(name, [*columns, "vector"]).combine_chunks()
        index = VectorIndex(
            table.column("id"), matrix=matrix_of(table.column("vector")), nprobe=settings.nprobe
        )
        return index, table.select(columns[1:])
    table = store.scan(name, columns).combine_chunks()
    index = open_ann(store, name, directory, settings, table.column("id"))
    positions = pc.index_in(index.ids, value_set=table.column("id"))
    index.live &= ~pc.is_null(positions).to_numpy(zero_copy_only=False)
    return index, table.select(columns[1:]).take(pc.fill_null(positions, 0))


def open_ann(
    store: Store,
    name: str,
    directory: Path | None,
    settings: AnnSettings,
    store_ids: pa.ChunkedArray | pa.Array,
    *,
    save: bool = False,
) -> VectorIndex:
    """The saved ANN index of ``name`` brought up to the store's rows (built if missing,
    mostly dead or outgrown); written back when ``save`` (writers only). Without a
    ``directory`` (a store outside an index directory) it is built in memory."""
    if isinstance(store_ids, pa.ChunkedArray):
        store_ids = store_ids.combine_chunks()

    def fetch(ids: list[str]) -> np.ndarray:
        table = store.scan(name, ["id", "vector"], Filter(ids=tuple(ids)))
        order = pc.index_in(pa.array(ids, type=pa.string()), value_set=table.column("id"))
        return matrix_of(table.column("vector").take(order))

    saved = load_ann(directory, name) if directory is not None else None
    if saved is not None:
        ann, ann_ids, live, changed = sync_ann(*saved, store_ids, fetch)
        index = VectorIndex(ann_ids, ann=ann, nprobe=settings.nprobe)
        index.live = live
        if index.dead_share <= REBUILD_DEAD_SHARE and not outgrown(ann):
            if save and changed and directory is not None:
                save_ann(directory, name, ann, ann_ids)
            return index
        log.info("rebuilding the ANN index of %s (%.0f%% dead)", name, 100 * index.dead_share)
    log.info("building the ANN index of %s over %d vectors", name, len(store_ids))
    table = store.scan(name, ["id", "vector"])
    ann = build_ann(matrix_of(table.column("vector")))
    ann_ids = table.column("id").combine_chunks()
    if save and directory is not None:
        save_ann(directory, name, ann, ann_ids)
    return VectorIndex(ann_ids, ann=ann, nprobe=settings.nprobe)
