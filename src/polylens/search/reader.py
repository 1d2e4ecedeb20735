"""What a search reads, behind one small interface with two implementations: the store
itself (always correct, a round trip per call) and the in-memory snapshot of one store
version (``polylens.search.snapshot``). The searcher never asks which one it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from polylens.ingest.sources import under_any
from polylens.representations.base import Representation
from polylens.store.base import FILES, ITEMS, Filter, Store


class Reader(Protocol):
    def has(self, rep: Representation) -> bool:
        """Whether the index holds data of ``rep`` (its collection exists)."""
        ...

    def part(self, name: str) -> Any:
        """The representation's in-memory part, or None: it answers from the store."""
        ...

    def items_and_paths(
        self, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
        """Item rows by id, and the committed paths of their contents (items whose content
        has no file row yet are absent from the second mapping)."""
        ...

    def hashes_under(self, root: str) -> tuple[str, ...]:
        """Contents of the files at or below ``root``."""
        ...


class StoreReader:
    def __init__(self, store: Store) -> None:
        self.store = store

    def has(self, rep: Representation) -> bool:
        return rep.collection is None or self.store.has_collection(rep.collection)

    def part(self, name: str) -> Any:
        return None

    def items_and_paths(
        self, ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
        items = {row["id"]: row for row in self.store.get(ITEMS, Filter(ids=tuple(ids)))}
        hashes = tuple({row["content_hash"] for row in items.values()})
        paths: dict[str, list[str]] = {}
        if hashes:
            for row in self.store.get(
                FILES, Filter(content_hashes=hashes), ["path", "content_hash"]
            ):
                paths.setdefault(row["content_hash"], []).append(row["path"])
        return items, paths

    def hashes_under(self, root: str) -> tuple[str, ...]:
        rows = self.store.get(FILES, None, ["path", "content_hash"])
        return tuple(sorted({r["content_hash"] for r in rows if under_any(r["path"], [root])}))
