"""An in-memory read model of one store version, so a query needs no store round trip:
item and file metadata, and each representation's own part (vectors, postings, hashes).

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
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from polylens.representations.ann import AnnSettings
from polylens.representations.base import BuildContext, Representation
from polylens.representations.masks import FilterMasks
from polylens.store.base import FILES, ITEMS, Store

log = logging.getLogger(__name__)

ITEM_COLUMNS = ["id", "content_hash", "kind", "page", "chunk", "text", "start", "end"]


@dataclass
class Snapshot:
    """A :class:`polylens.search.reader.Reader` over one store version, in memory."""

    token: Hashable
    items: pa.Table
    ids: list[str]
    item_row: dict[str, int]
    paths: dict[str, list[str]]
    parts: dict[str, Any]
    """Each representation's in-memory part, by name."""
    collections: frozenset[str]
    """Representation collections the store held when this was built."""
    item_masks: FilterMasks
    sorted_paths: list[str] = field(default_factory=list)
    sorted_hashes: list[str] = field(default_factory=list)

    def has(self, rep: Representation) -> bool:
        return rep.collection is None or rep.collection in self.collections

    def part(self, name: str) -> Any:
        return self.parts.get(name)

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
    store: Store,
    index_dir: Path,
    settings: AnnSettings,
    token: Hashable,
    reps: Sequence[Representation],
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
    item_masks = FilterMasks.of(items)
    ctx = BuildContext(
        store=store,
        index_dir=index_dir,
        ann=settings,
        item_ids=pa.array(ids, type=pa.string()),
        ids=ids,
        item_masks=item_masks,
        item_texts=items.column("text").to_pylist(),
    )
    collections = frozenset(
        rep.collection for rep in reps if rep.collection and store.has_collection(rep.collection)
    )
    parts = {}
    for rep in reps:
        if rep.collection is None or rep.collection in collections:
            part = rep.build_part(ctx)
            if part is not None:
                parts[rep.name] = part
    return Snapshot(
        token=token,
        items=items,
        ids=ids,
        item_row={item_id: row for row, item_id in enumerate(ids)},
        paths=paths,
        parts=parts,
        collections=collections,
        item_masks=item_masks,
        sorted_paths=sorted_paths,
        sorted_hashes=sorted_hashes,
    )


def refresh_derived(
    store: Store, index_dir: Path, settings: AnnSettings, reps: Sequence[Representation]
) -> None:
    """After a write: bring each representation's derived files (saved ANN indexes,
    postings) up to date, so readers load them instead of rebuilding."""
    ctx = BuildContext(
        store=store, index_dir=index_dir, ann=settings, item_ids=pa.array([], pa.string())
    )
    for rep in reps:
        rep.after_write(ctx)


class SnapshotKeeper:
    """Holds the current snapshot; rebuilds it in a background thread when the store moves.

    ``current()`` costs one change-token read and never blocks on a build.
    """

    def __init__(
        self,
        store: Store,
        index_dir: Path,
        settings: AnnSettings,
        reps: Callable[[], Sequence[Representation]],
        *,
        min_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.index_dir = index_dir
        self.settings = settings
        self.reps = reps
        """The index's representations now (they change when another run adds one)."""
        self.min_interval = min_interval
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._building: threading.Thread | None = None
        self._last_build = 0.0

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
                    self.store, self.index_dir, self.settings, token, self.reps()
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
