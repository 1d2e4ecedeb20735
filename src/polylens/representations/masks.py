"""Row masks for filters (kinds, contents) over a read-model part whose rows carry a kind
and a content hash: computed once per distinct filter and kept while the part lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from polylens.store.base import Filter
from polylens.types import KINDS

_KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}


def kind_codes(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    codes = pc.index_in(column, value_set=pa.array(KINDS, type=pa.string()))
    return pc.fill_null(codes, 255).to_numpy(zero_copy_only=False).astype(np.uint8)


@dataclass
class FilterMasks:
    kinds: np.ndarray  # uint8 kind code per row
    hashes: pa.Array  # content hash per row
    base: np.ndarray | None = None  # rows that may ever match
    _cache: dict[Any, np.ndarray | None] = field(default_factory=dict)

    @classmethod
    def of(cls, table: pa.Table, base: np.ndarray | None = None) -> FilterMasks:
        """Masks over the rows of a table with ``kind`` and ``content_hash`` columns."""
        return cls(
            kind_codes(table.column("kind")),
            table.column("content_hash").combine_chunks(),
            base=base,
        )

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
