"""Reading one indexed item: its row, its picture or file, its duplicates. Kept apart
from :mod:`polylens.engine` so the facade stays readable; ``Index`` inherits these
methods, which only read (through its store, snapshot keeper and recorded roots)."""

from __future__ import annotations

from typing import Any

from polylens.duplicates import duplicates_of, find_duplicates
from polylens.items import item_picture, read_item, safe_path
from polylens.representations.phash import HashTable, PerceptualHash
from polylens.types import DuplicateGroup, DuplicateItem, ItemInfo


class IndexItems:
    """Mixed into :class:`polylens.engine.Index`."""

    # provided by Index: config, _meta, _store, _keeper, _serve_from_memory, _reload_meta()
    config: Any
    _meta: Any
    _store: Any
    _keeper: Any
    _serve_from_memory: bool
    _reload_meta: Any

    def item(self, item_id: str) -> ItemInfo:
        """An indexed item with its text and every path that holds its content."""
        return read_item(self._store, item_id)

    def duplicates(self, *, threshold: int | None = None) -> list[DuplicateGroup]:
        """Groups of exact copies (same content in several files) and of near-duplicate
        pictures (perceptual hashes at most ``threshold`` bits apart)."""
        self._reload_meta()
        return find_duplicates(self._store, threshold)

    def duplicates_of(self, item_id: str, *, threshold: int | None = None) -> list[DuplicateItem]:
        """The near-duplicates of one item, nearest first (its exact copies are its
        ``other_paths``)."""
        self.item(item_id)
        snapshot = self._keeper.current(start_build=self._serve_from_memory)
        table = snapshot.part(PerceptualHash.name) if snapshot is not None else None
        if table is None and self._store.has_collection(PerceptualHash.collection):
            table = HashTable.load(self._store, PerceptualHash.collection)
        return duplicates_of(self._store, table, item_id, threshold)

    def item_image(self, item_id: str, *, max_side: int | None = None) -> Any:
        """The picture of an image or page item, or a video segment's middle keyframe
        (PIL), read from the indexed file.

        Only files the index holds are opened, and only while they still lie under a root
        the index was built from (no symlink escapes)."""
        info = self.item(item_id)
        self._reload_meta()
        return item_picture(info, self._meta.roots, self.config, max_side=max_side)

    def item_file(self, item_id: str) -> str:
        """The real path of the file holding an item, checked as in :meth:`item_image`."""
        self._reload_meta()
        return safe_path(self.item(item_id), self._meta.roots)
