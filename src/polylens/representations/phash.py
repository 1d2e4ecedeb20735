"""Near-duplicates: a perceptual hash of every image and page, searched by Hamming distance.

People's photo folders are full of near-copies (resized for mail, recompressed by a
messenger, slightly cropped or brightened). Exact copies share a content hash already;
this catches the rest. It costs a fraction of a millisecond a picture, so it is on by
default. An image query pins the query's copies and near-copies ahead of the similarity
ranking; "more like this" does the same for a stored item; ``polylens dupes`` groups them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polylens.config import IndexConfig
from polylens.representations.base import (
    BuildContext,
    Needs,
    Query,
    Ranked,
    Representation,
    SearchContext,
)
from polylens.representations.hamming import dct_hash, distances
from polylens.representations.masks import FilterMasks, kind_codes
from polylens.store.base import Filter, Store
from polylens.store.schema import representation_schema
from polylens.types import StageClock, Unit

NEAR_DISTANCE = {"image": 14, "page": 8}
"""Default bits (of 64) within which two hashes count as near copies, by item kind.

Photos: 14, chosen on scikit-image's photos and 17 edited copies of each by
``bench/near_duplicates.py``: the largest radius with pairwise precision 1.00 there (recall
0.80: every JPEG, resize and brightness copy, most 1-3 degree rotations and 3 % crops,
few 8 % crops). Pages: 8, by ``bench/near_duplicate_pages.py`` on three real manuals
(68 pages): distinct pages share a layout and come within 10 bits of each other, while
a page rendered again, recompressed, blurred, darkened, halved or turned by a degree
stays within 8 (and 97 % of pages with 2 % cut off)."""


def radii(threshold: int | None) -> dict[str, int]:
    """The radius per kind: the defaults, or one ``threshold`` for every kind."""
    return dict(NEAR_DISTANCE) if threshold is None else dict.fromkeys(NEAR_DISTANCE, threshold)


SCHEMA = representation_schema(pa.field("hash", pa.int64(), nullable=False))


PHASH_PICTURE_SIDE = 128
"""Short side a photo is decoded at for its hash: the hash reads a 32 x 32 reduction, and
from four times that it differs from a full decode's by a few bits, far inside the
near-copy radius (tests/unit/test_decode_side.py measures it on real photos)."""


@dataclass
class HashTable:
    """Every stored hash in memory (8 bytes an item): a query scans them all with XOR and
    popcount, a few milliseconds at a million; grouping uses multi-index hashing."""

    item_ids: list[str]
    hashes: np.ndarray  # int64
    masks: FilterMasks
    _rows: dict[str, int] | None = None

    @classmethod
    def load(cls, store: Store, collection: str) -> HashTable:
        table = store.scan(collection, ["item_id", "content_hash", "kind", "hash"])
        table = table.combine_chunks()
        return cls(
            table.column("item_id").to_pylist(),
            table.column("hash").to_numpy().astype(np.int64),
            FilterMasks.of(table),
        )

    def radius_per_row(self, by_kind: dict[str, int]) -> np.ndarray:
        lookup = np.full(256, -1, dtype=np.int16)
        for kind, radius in by_kind.items():
            lookup[kind_codes(pa.array([kind]))[0]] = radius
        return lookup[self.masks.kinds]

    def near(
        self, query: int, by_kind: dict[str, int], where: Filter | None
    ) -> list[tuple[str, int]]:
        """(item id, distance) within its kind's radius, nearest first, then by id."""
        if not len(self.hashes):
            return []
        found = distances(self.hashes, query)
        allowed = found <= self.radius_per_row(by_kind)
        mask = self.masks(where)
        if mask is not None:
            allowed &= mask
        rows = np.flatnonzero(allowed)
        pairs = [(self.item_ids[r], int(found[r])) for r in rows]
        return sorted(pairs, key=lambda p: (p[1], p[0]))

    def copies(self, content_hash: str, where: Filter | None) -> list[str]:
        """Items of exactly this content (the same bytes as the query)."""
        same = pc.equal(self.masks.hashes, content_hash).to_numpy(zero_copy_only=False)
        mask = self.masks(where)
        if mask is not None:
            same &= mask
        return sorted(self.item_ids[r] for r in np.flatnonzero(same))

    def hash_of(self, item_id: str) -> int | None:
        if self._rows is None:
            self._rows = {item_id: row for row, item_id in enumerate(self.item_ids)}
        row = self._rows.get(item_id)
        return None if row is None else int(self.hashes[row])


class PerceptualHash(Representation):
    name = "phash"
    title = "near-duplicate hashes"
    stored_as = "perceptual hashes"
    kinds = ("image", "page")
    needs = Needs(pixels=True)
    accepts: ClassVar[frozenset[str]] = frozenset({"image", "item"})
    modality = "image"
    supplementary = True
    collection = "phash"
    eval_name = "phash"

    @property
    def algorithm(self) -> str:
        return f"dct-phash-64-v{self.version}"

    def prepare(self, model: Any, picture: Any) -> Any:
        return dct_hash(picture)

    def picture_side(self, model: Any) -> int | None:
        return PHASH_PICTURE_SIDE

    def ensure_storage(self, store: Store, model: Any) -> None:
        store.ensure_collection(self.collection, schema=SCHEMA)

    def encode(
        self, model: Any, units: Sequence[Unit], config: IndexConfig, clock: StageClock
    ) -> list[dict[str, Any]]:
        return [
            {
                "id": unit.item_id,
                "item_id": unit.item_id,
                "content_hash": unit.content_hash,
                "kind": unit.kind,
                "hash": unit.inputs[self.name],
            }
            for unit in units
            if unit.inputs.get(self.name) is not None
        ]

    def build_part(self, ctx: BuildContext) -> HashTable:
        return HashTable.load(ctx.store, self.collection)

    def load_store_part(self, ctx: SearchContext) -> HashTable:
        return HashTable.load(ctx.store, self.collection)

    def retrieve(self, query: Query, ctx: SearchContext) -> Ranked | None:
        table = ctx.part if ctx.part is not None else self.part_from_store(ctx)
        if query.item_id is not None:
            wanted = table.hash_of(query.item_id)
        elif query.image is not None:
            wanted = dct_hash(query.image)
        else:
            return None
        if wanted is None:
            return None
        # Scores: minus the Hamming distance; the query's own file (same bytes) above all.
        near = [(i, -float(d)) for i, d in table.near(wanted, NEAR_DISTANCE, ctx.where)]
        if query.image_digest is not None:
            exact = table.copies(query.image_digest, ctx.where)
            near = [(i, 1.0) for i in exact] + [(i, s) for i, s in near if i not in exact]
        return Ranked([i for i, _ in near], [s for _, s in near], pinned=True)
