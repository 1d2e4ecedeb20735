"""Duplicates in an index, in two tiers: exact copies (files with the same content hash)
and near-duplicates (pictures whose perceptual hashes lie within a threshold)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from polylens.errors import InputError
from polylens.representations.hamming import near_pairs, star_groups
from polylens.representations.phash import HashTable, PerceptualHash, radii
from polylens.store.base import FILES, ITEMS, Filter, Store
from polylens.types import DuplicateGroup, DuplicateItem

MAX_THRESHOLD = 32


def check_threshold(threshold: int | None) -> dict[str, int]:
    """The radius per kind: the defaults, or the one threshold a user gave."""
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int)
        or not 0 <= threshold <= MAX_THRESHOLD
    ):
        raise InputError(f"threshold must be a whole number of bits from 0 to {MAX_THRESHOLD}")
    return radii(threshold)


def _paths(store: Store, contents: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Committed paths by content, sorted (all contents, or only ``contents``)."""
    where = None if contents is None else Filter(content_hashes=tuple(contents))
    paths: dict[str, list[str]] = {}
    for row in store.get(FILES, where, ["path", "content_hash"]):
        paths.setdefault(row["content_hash"], []).append(row["path"])
    return {h: sorted(p) for h, p in paths.items()}


def _members(store: Store, groups: list[list[tuple[str, int]]]) -> list[list[DuplicateItem]]:
    """Groups of (item id, distance) as duplicate entries, looked up in one pass; items
    whose content has no committed file (a run still writing it) are left out."""
    wanted = tuple({item_id for group in groups for item_id, _ in group})
    if not wanted:
        return [[] for _ in groups]
    columns = ["id", "content_hash", "kind", "page"]
    items = {r["id"]: r for r in store.get(ITEMS, Filter(ids=wanted), columns)}
    paths = _paths(store, {r["content_hash"] for r in items.values()})
    return [
        [
            DuplicateItem(i, paths[item["content_hash"]][0], item["kind"], item["page"], d)
            for i, d in group
            if (item := items.get(i)) is not None and item["content_hash"] in paths
        ]
        for group in groups
    ]


def exact_groups(store: Store, paths: dict[str, list[str]]) -> list[DuplicateGroup]:
    """Contents held by two or more files; each file listed with the content's first item."""
    copied = {h: p for h, p in paths.items() if len(p) > 1}
    if not copied:
        return []
    columns = ["id", "content_hash", "kind", "page", "chunk"]
    rows = store.get(ITEMS, Filter(content_hashes=tuple(copied)), columns)
    first: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: (r["page"] or 0, r["chunk"] or 0, r["id"])):
        first.setdefault(row["content_hash"], row)
    return [
        DuplicateGroup(
            "exact",
            [DuplicateItem(first[h]["id"], path, first[h]["kind"], None, 0) for path in files],
        )
        for h, files in sorted(copied.items(), key=lambda kv: kv[1][0])
        if h in first
    ]


def near_groups(
    store: Store, paths: dict[str, list[str]], by_kind: dict[str, int]
) -> list[DuplicateGroup]:
    """Pictures within their kind's radius of a group's first (its centre); a photo and a
    page pair up within the smaller of the two."""
    collection = PerceptualHash.collection
    if not store.has_collection(collection):
        return []
    table = HashTable.load(store, collection)
    committed = np.array([h in paths for h in table.masks.hashes.to_pylist()], dtype=bool)
    ids = [i for i, ok in zip(table.item_ids, committed, strict=True) if ok]
    limit = table.radius_per_row(by_kind)[committed]
    pairs = [
        pair
        for pair in near_pairs(table.hashes[committed], max(by_kind.values()))
        if pair.distance <= min(limit[pair.a], limit[pair.b])
    ]
    groups = [[(ids[r], d) for r, d in group] for group in star_groups(pairs, ids)]
    out = [DuplicateGroup("near", m) for m in _members(store, groups) if len(m) > 1]
    return sorted(out, key=lambda g: (g.items[0].path, g.items[0].page or 0))


def find_duplicates(store: Store, threshold: int | None = None) -> list[DuplicateGroup]:
    paths = _paths(store)
    return [*exact_groups(store, paths), *near_groups(store, paths, check_threshold(threshold))]


def duplicates_of(
    store: Store, table: HashTable | None, item_id: str, threshold: int | None = None
) -> list[DuplicateItem]:
    """The near-duplicates of one item (not the item itself), nearest first."""
    by_kind = check_threshold(threshold)
    wanted = table.hash_of(item_id) if table is not None else None
    if table is None or wanted is None:
        return []
    near = [(i, d) for i, d in table.near(wanted, by_kind, None) if i != item_id]
    return _members(store, [near])[0]
