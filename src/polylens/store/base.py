"""The small, batch-first interface every storage engine implements.

Ingest and search talk only to this interface, so a distributed engine (Qdrant) can be
added beside the embedded LanceDB store without touching either. Filters are typed
values, not SQL, so each engine translates them into its own query language.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

# The collections every index has (schemas in polylens.store.schema). Each representation
# names its own beside them (polylens.representations).
FILES = "files"
ITEMS = "items"


@dataclass(frozen=True)
class Filter:
    """Conjunction of optional constraints; ``None`` means "no constraint"."""

    kinds: tuple[str, ...] | None = None
    content_hashes: tuple[str, ...] | None = None
    ids: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in (self.kinds, self.content_hashes, self.ids, self.paths))


@dataclass(frozen=True)
class ScoredRow:
    """A search result from one collection: higher ``score`` is better."""

    row: dict[str, Any]
    score: float


class Store(ABC):
    """Upsert / delete / search / count / close over named collections."""

    searches_itself: ClassVar[bool] = False
    """Whether searches should run in the engine (a server's own vector and BM25 search)
    rather than over an in-memory read model built from a scan of the whole index: what a
    distributed store is for. Representations then ask :meth:`search_vector`,
    :meth:`search_text` and :meth:`sample` instead of building parts."""

    @abstractmethod
    def ensure_collection(
        self, name: str, *, vector_dim: int | None = None, schema: pa.Schema | None = None
    ) -> None:
        """Create ``name`` if missing. Vector collections need ``vector_dim``; other
        representation collections give their ``schema`` (``id``, ``item_id``,
        ``content_hash``, ``kind`` and their own columns)."""

    @abstractmethod
    def has_collection(self, name: str) -> bool: ...

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Remove ``name`` and its rows (a representation taken out of the index)."""

    @abstractmethod
    def vector_dim(self, name: str) -> int | None:
        """The dimension of a vector collection, ``None`` if it does not exist."""

    @abstractmethod
    def upsert(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows, replacing rows with the same key (``path`` for files, else ``id``)."""

    @abstractmethod
    def delete(self, name: str, where: Filter) -> None:
        """Delete matching rows. An empty filter is refused, to protect against accidents."""

    @abstractmethod
    def get(
        self, name: str, where: Filter | None = None, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Rows matching ``where`` (all rows if ``None``), only ``columns`` if given."""

    @abstractmethod
    def search_vector(
        self, name: str, vector: np.ndarray, k: int, where: Filter | None = None
    ) -> list[ScoredRow]:
        """Nearest rows by cosine similarity (score = similarity)."""

    @abstractmethod
    def search_text(
        self, name: str, query: str, k: int, where: Filter | None = None
    ) -> list[ScoredRow]:
        """BM25 full-text search over the collection's ``text`` column."""

    @abstractmethod
    def count(self, name: str, where: Filter | None = None) -> int: ...

    @abstractmethod
    def optimize(self, *, ann_min_rows: int) -> None:
        """Fold new rows into indexes; build ANN indexes for collections big enough."""

    @abstractmethod
    def close(self) -> None: ...

    def scan(self, name: str, columns: Sequence[str], where: Filter | None = None) -> pa.Table:
        """Rows as one Arrow table: the bulk read the in-memory read model is built from.
        Engines should override this; the default goes through ``get``."""
        return pa.Table.from_pylist(self.get(name, where, columns))

    def sample(self, name: str, n: int, columns: Sequence[str]) -> pa.Table:
        """A fixed sample of up to ``n`` rows (the background a query's scores are measured
        against). Engines that search themselves override this with one cheap request."""
        table = self.scan(name, columns)
        if table.num_rows <= n:
            return table
        rng = np.random.default_rng(0)
        return table.take(pa.array(np.sort(rng.choice(table.num_rows, size=n, replace=False))))

    def text_attainable(self, name: str, query: str) -> float | None:
        """For stores that rank BM25 themselves: the most an item could score for
        ``query`` (what a BM25 score is measured against); None when unknown."""
        return None

    def describe(self) -> str:
        """Where the data lives, for ``status`` and messages (never a secret)."""
        return type(self).__name__

    def change_token(self) -> Hashable | None:
        """A cheap value that changes whenever any collection changes (``None``: unknown,
        so nothing derived from the store may be cached)."""
        return None

    def distinct(self, name: str, column: str) -> set[Any]:
        """Distinct values of one column. Engines may override with something faster."""
        return {row[column] for row in self.get(name, None, [column])}

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunked(values: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
