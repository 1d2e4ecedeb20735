"""Late-interaction page vectors (ColQwen2, ColPali): a page as its patch vectors, a text
query as its token vectors, the score MaxSim.

The store holds every page's vectors (fp16, one row per page: the source of truth,
crash-safe and incremental like every collection). Searching reads a derived copy in
the index directory (``late/``): the vectors in one memory-mapped file and a first-stage
index over pooled vectors (:class:`polylens.search.multivector_index.MultiVectorIndex`), kept in
step after each write (new pages appended, removed ones masked). A query's first stage
proposes ``page_candidates`` pages; exact MaxSim over their stored vectors ranks them, so
scores are exact; ``exact`` scores every page (for checks).

Which pictures are pages: every PDF page, and every image where OCR found at least
``page_min_text`` characters (scans, screenshots, slides); photos are left to the
image-text representation.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from polylens.config import IndexConfig
from polylens.encoders.registry import ModelRegistry
from polylens.meta import ModelRecord, write_json_atomic, write_text_atomic
from polylens.representations.base import (
    BuildContext,
    Needs,
    Query,
    Ranked,
    Representation,
    SearchContext,
)
from polylens.representations.masks import FilterMasks
from polylens.store.base import Filter, Store
from polylens.types import StageClock, Unit

log = logging.getLogger(__name__)

LATE_DIR = "late"
ROWS_FILE = "rows.json"
BANK_PAGES = 256
"""Pages a query's MaxSim is measured against for its evidence (a fixed random sample)."""
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("item_id", pa.string()),
        pa.field("content_hash", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("n", pa.int32()),
        pa.field("dim", pa.int32()),
        pa.field("vectors", pa.large_binary()),
        pa.field("grid_start", pa.int32()),
        pa.field("grid_rows", pa.int32()),
        pa.field("grid_cols", pa.int32()),
    ]
)
ROW_COLUMNS = ["id", "item_id", "content_hash", "kind"]


@dataclass
class LatePart:
    """The derived index with its rows' items, and the masks filters are made of."""

    index: Any  # MultiVectorIndex
    item_ids: list[str]
    masks: FilterMasks
    bank: list[np.ndarray]

    def search(
        self, query: np.ndarray, k: int, where: Filter | None, *, candidates: int, exact: bool
    ) -> tuple[list[str], list[float]]:
        allowed = self.masks(where)
        live = self.index.live if allowed is None else self.index.live & allowed
        rows, scores = self.index.search(query, k, candidates=candidates, live=live, exact=exact)
        return [self.item_ids[r] for r in rows], [float(s) for s in scores]


class LateInteraction(Representation):
    name = "late"
    title = "late-interaction page vectors"
    kinds = ("image", "page")
    needs = Needs(pixels=True)
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    stored_as = "page vectors"
    modality = "text"
    default = False
    collection = "late_pages"
    eval_name = "late"
    weight_key = None
    model_key = "page_model"
    model_role = "page"

    # -- model -----------------------------------------------------------------------
    def canonical(self, registry: ModelRegistry, name: str) -> str:
        return registry.canonical("page", name)

    def holds_data(self, record: ModelRecord) -> bool:
        return record.resolved != "none" and record.dim is not None

    def load_model(self, registry: ModelRegistry, config: IndexConfig) -> Any:
        return registry.load_page(
            config.page_model,
            device=config.device,
            batch_size=max(1, min(config.batch_size, 8)),
            max_pixels=config.page_max_pixels,
        )

    def wants(self, item: dict[str, Any], config: IndexConfig) -> bool:
        return item["kind"] == "page" or (
            item["kind"] == "image" and len(item["text"].strip()) >= config.page_min_text
        )

    def caveats(self, config: IndexConfig) -> list[str]:
        if config.ocr or config.page_min_text <= 0:
            return []
        return [
            "OCR is off, so pictures cannot be told apart as pages (scans, screenshots, "
            "slides): only PDF pages get page vectors; set page_min_text = 0 to give every "
            "picture page vectors"
        ]

    def ensure_storage(self, store: Store, model: Any) -> None:
        store.ensure_collection(self.name_of_collection, schema=SCHEMA)

    @property
    def name_of_collection(self) -> str:
        assert self.collection is not None
        return self.collection

    def encode(
        self, model: Any, units: Sequence[Unit], config: IndexConfig, clock: StageClock
    ) -> list[dict[str, Any]]:
        chosen = [
            u
            for u in units
            if self.name in u.inputs and self.wants({"kind": u.kind, "text": u.text or ""}, config)
        ]
        if not chosen:
            return []
        started = time.perf_counter()
        pages = model.embed_pages([u.inputs[self.name] for u in chosen])
        clock.add("encode_page", started)
        rows = []
        for unit, page in zip(chosen, pages, strict=True):
            vectors, grid = page.vectors, (page.grid_start, page.rows, page.cols)
            if config.page_token_pool > 1:
                from polylens.search.maxsim import token_pool

                vectors = token_pool(vectors.astype(np.float32), config.page_token_pool)
                grid = (0, 0, 0)  # pooled vectors no longer map to patches
            vectors = np.ascontiguousarray(vectors, dtype=np.float16)
            rows.append(
                {
                    "id": unit.item_id,
                    "item_id": unit.item_id,
                    "content_hash": unit.content_hash,
                    "kind": unit.kind,
                    "n": int(vectors.shape[0]),
                    "dim": int(vectors.shape[1]),
                    "vectors": vectors.tobytes(),
                    "grid_start": grid[0],
                    "grid_rows": grid[1],
                    "grid_cols": grid[2],
                }
            )
        return rows

    # -- search ----------------------------------------------------------------------
    def retrieve(self, query: Query, ctx: SearchContext) -> Ranked | None:
        if not query.text or ctx.model is None:
            return None
        kinds = ctx.where.kinds if ctx.where and ctx.where.kinds else self.kinds
        if not set(kinds) & set(self.kinds):
            return None
        part: LatePart | None = ctx.part if ctx.part is not None else self.part_from_store(ctx)
        if part is None:
            return None
        tokens = ctx.model.embed_queries([query.text])[0]
        ids, scores = part.search(
            tokens,
            ctx.depth,
            ctx.where,
            candidates=max(ctx.config.page_candidates, ctx.depth),
            exact=query.exact,
        )
        return Ranked(
            ids,
            scores,
            evidence=_evidence(tokens, scores, part.bank),
            curve="late",
            kinds=tuple(k for k in kinds if k in self.kinds),
        )

    def heatmap(self, store: Store, model: Any, item_id: str, text: str) -> dict[str, Any] | None:
        """Which patches of a page the query matched: for every query token, the MaxSim
        contribution of its best vector, added to that vector's patch; a ``rows x cols``
        grid (row-major), scaled to [0, 1]. None: the page has no patch grid (pooled
        vectors) or no vectors of this representation."""
        if not store.has_collection(self.name_of_collection):
            return None
        columns = ["n", "dim", "vectors", "grid_start", "grid_rows", "grid_cols"]
        found = store.get(self.name_of_collection, Filter(ids=(item_id,)), columns)
        if not found or not found[0]["grid_rows"] or not found[0]["grid_cols"]:
            return None
        row = found[0]
        page = np.frombuffer(row["vectors"], np.float16).reshape(row["n"], row["dim"])
        tokens = model.embed_queries([text])[0]
        sims = tokens @ page.astype(np.float32).T
        best = sims.argmax(axis=1)
        start, rows, cols = row["grid_start"], row["grid_rows"], row["grid_cols"]
        heat = np.zeros(rows * cols, dtype=np.float64)
        on_grid = 0
        for token, patch in enumerate(best):
            if start <= patch < start + rows * cols:
                heat[patch - start] += max(float(sims[token, patch]), 0.0)
                on_grid += 1
        peak = float(heat.max())
        return {
            "rows": rows,
            "cols": cols,
            "values": (heat / peak if peak > 0 else heat).round(4).tolist(),
            "score": float(sims.max(axis=1).sum()),
            "tokens": int(len(tokens)),
            "tokens_on_page": on_grid,
        }

    # -- read model and derived files ------------------------------------------------
    def build_part(self, ctx: BuildContext) -> LatePart | None:
        if not ctx.store.has_collection(self.name_of_collection):
            return None
        return self._open(ctx.store, ctx.index_dir, save=False)

    def load_store_part(self, ctx: SearchContext) -> LatePart | None:
        if not ctx.store.has_collection(self.name_of_collection):
            return None
        return self._open(ctx.store, ctx.index_dir, save=False)

    def after_write(self, ctx: BuildContext) -> None:
        if ctx.store.has_collection(self.name_of_collection):
            self._open(ctx.store, ctx.index_dir, save=True)

    def footprint(self, index_dir: Path) -> int | None:
        directory = index_dir / LATE_DIR
        if not directory.is_dir():
            return None
        return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())

    def drop(self, store: Store, index_dir: Path) -> None:
        super().drop(store, index_dir)
        shutil.rmtree(index_dir / LATE_DIR, ignore_errors=True)

    def _open(self, store: Store, index_dir: Path | None, *, save: bool) -> LatePart | None:
        """The derived index brought up to the store: loaded, synced (new pages added,
        gone ones masked), saved back as a new generation when ``save`` (writers only). A
        reader that finds it missing or behind builds a private copy in a temporary
        folder."""
        from polylens.search.multivector_index import MultiVectorIndex
        from polylens.search.patch_store import PatchStore

        rows = store.scan(self.name_of_collection, ROW_COLUMNS).combine_chunks()
        late = index_dir / LATE_DIR if index_dir is not None else None
        if len(rows) == 0:
            if save and late is not None:
                shutil.rmtree(late, ignore_errors=True)
            return None
        if not save:
            loaded = self._load_synced(late, rows) if late is not None else None
            if loaded is not None:
                return loaded
            late = Path(tempfile.mkdtemp(prefix="polylens-late-"))
        assert late is not None
        index, saved_ids = _load_current(late, writable=True)
        store_ids = rows.column("id").to_pylist()
        known = set(store_ids)
        gone: list[int] = []
        if index is not None:
            gone = [r for r, item in enumerate(saved_ids) if item not in known]
            if gone:
                index.delete(np.asarray(gone, dtype=np.int64))
            present = set(saved_ids)
            new = [i for i in store_ids if i not in present]
            if not gone and not new:  # in step: nothing to write (a 1M-page index's
                _sweep(late, _current_name(late), index)  # pooled vectors are GBs)
                return self._part(index, saved_ids, rows)
        else:
            new = store_ids
        if index is None or (index.n_live + len(new)) * 2 < len(saved_ids) + len(new):
            # none yet, unreadable, or mostly dead: a fresh patch store (readers of the old
            # one keep their memory map of it; it is removed once no generation names it)
            live = [saved_ids[r] for r in np.flatnonzero(index.live)] if index else []
            ids = [*live, *new] if index else store_ids
            patches_dir = late / f"patches-{_next_number(late, 'patches-')}"
            patches = PatchStore.from_pages(patches_dir, self._vectors(store, ids))
            index, saved_ids = MultiVectorIndex.build(patches), ids
        elif new:
            index.add(self._vectors(store, new))
            saved_ids = [*saved_ids, *new]
        _save_generation(late, index, saved_ids)
        return self._part(index, saved_ids, rows)

    def _load_synced(self, late: Path, rows: pa.Table) -> LatePart | None:
        index, saved_ids = _load_current(late, writable=False)
        if index is None:
            return None
        live_ids = {saved_ids[r] for r in np.flatnonzero(index.live)}
        if live_ids != set(rows.column("id").to_pylist()):
            return None
        return self._part(index, saved_ids, rows)

    def _vectors(self, store: Store, ids: list[str]) -> list[np.ndarray]:
        by_id: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), 512):
            chunk = tuple(ids[start : start + 512])
            table = store.scan(
                self.name_of_collection, ["id", "n", "dim", "vectors"], Filter(ids=chunk)
            )
            for row in table.to_pylist():
                flat = np.frombuffer(row["vectors"], dtype=np.float16)
                by_id[row["id"]] = flat.reshape(row["n"], row["dim"])
        return [by_id[i] for i in ids]

    @staticmethod
    def _part(index: Any, saved_ids: list[str], rows: pa.Table) -> LatePart:
        by_id = {item: n for n, item in enumerate(rows.column("id").to_pylist())}
        order = np.array([by_id.get(item, 0) for item in saved_ids], dtype=np.int64)
        aligned = rows.take(pa.array(order))
        live = np.flatnonzero(index.live)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(live, size=min(BANK_PAGES, len(live)), replace=False))
        bank = [np.asarray(index.patches.page(int(r)), dtype=np.float32) for r in sample]
        return LatePart(
            index=index,
            item_ids=aligned.column("item_id").to_pylist(),
            masks=FilterMasks.of(aligned, base=index.live.copy()),
            bank=bank,
        )


CURRENT_FILE = "CURRENT"
"""Names the generation readers open; replaced atomically, last, by a writer."""


def _load_current(late: Path, *, writable: bool) -> tuple[Any, list[str]]:
    """The generation ``CURRENT`` names, with its rows' item ids; (None, []) when there is
    none or it cannot be read (the caller rebuilds from the store, the source of truth)."""
    from polylens.search.multivector_index import MultiVectorIndex

    try:
        generation = late / _current_name(late)
        saved_ids = json.loads((generation / ROWS_FILE).read_text(encoding="utf-8"))
        index = MultiVectorIndex.load(generation, writable=writable)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if late.exists():
            log.info("late-interaction index in %s unreadable (%s): rebuilding", late, exc)
        return None, []
    if len(saved_ids) != len(index):
        return None, []
    return index, saved_ids


def _save_generation(late: Path, index: Any, saved_ids: list[str]) -> None:
    """Write the index's small files and rows as a new generation folder, then point
    ``CURRENT`` at it (one atomic rename: a reader sees the old generation or the new,
    never a mix; a crash before it leaves the old one current), then remove generations
    and patch stores nothing names any more. The patch store is append-only and shared by
    the generations that name it: pages a crashed writer appended past its last
    generation are dropped by the next writer, never seen by readers."""
    name = f"gen-{_next_number(late, 'gen-')}"
    index.save(late / name, copy_patches=False)
    write_text_atomic(late / name / ROWS_FILE, json.dumps(saved_ids))
    write_json_atomic(late / CURRENT_FILE, {"generation": name})
    _sweep(late, name, index)


def _current_name(late: Path) -> str:
    return str(json.loads((late / CURRENT_FILE).read_text(encoding="utf-8"))["generation"])


def _sweep(late: Path, current: str, index: Any) -> None:
    """Remove what the current generation does not use: older generations, a crashed
    writer's, patch stores no generation names (a reader that opened one keeps its data)."""
    keep = {current, index.patches.directory.resolve().name}
    for old in late.iterdir():
        if old.is_dir() and old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    for stray in ("index.json", "rows.json", "pooled.f16", "first_stage.faiss", "live.npy"):
        (late / stray).unlink(missing_ok=True)  # a layout from before generations


def _next_number(late: Path, prefix: str) -> int:
    numbers = [
        int(p.name[len(prefix) :])
        for p in (late.iterdir() if late.is_dir() else ())
        if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
    ]
    return max(numbers, default=0) + 1


def _evidence(
    tokens: np.ndarray, scores: list[float], bank: list[np.ndarray]
) -> list[float] | None:
    """Each MaxSim in standard deviations above the query's mean MaxSim over a fixed
    sample of the index's pages: raw MaxSim grows with the query's length and differs by
    model; how far a page stands out from the rest of this index for this query does not."""
    if len(bank) < 2 or not scores:
        return None
    from polylens.search.maxsim import maxsim

    background = maxsim(tokens, bank)
    spread = max(float(background.std()), 1e-3)
    return ((np.asarray(scores, dtype=np.float64) - float(background.mean())) / spread).tolist()
