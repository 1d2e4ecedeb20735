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


def _paths(store: Store) -> dict[str, list[str]]:
    paths: dict[str, list[str]] = {}
    for row in store.get(FILES, None, ["path", "content_hash"]):
        paths.setdefault(row["content_hash"], []).append(row["path"])
    return {h: sorted(p) for h, p in paths.items()}


def exact_groups(store: Store, paths: dict[str, list[str]]) -> list[DuplicateGroup]:
    """Contents held by two or more files; each file listed with the content's first item."""
    copied = {h: p for h, p in paths.items() if len(p) > 1}
    if not copied:
        return []
    first: dict[str, dict] = {}
    rows = store.get(ITEMS, Filter(content_hashes=tuple(copied)), ["id", "content_hash", "kind"])
    for row in sorted(rows, key=lambda r: _item_order(r["id"])):
        first.setdefault(row["content_hash"], row)
    groups = []
    for content, files in sorted(copied.items(), key=lambda kv: kv[1][0]):
        item = first.get(content)
        if item is None:
            continue
        groups.append(
            DuplicateGroup(
                "exact",
                [DuplicateItem(item["id"], path, item["kind"], None, 0) for path in files],
            )
        )
    return groups


def near_groups(
    store: Store, paths: dict[str, list[str]], by_kind: dict[str, int]
) -> list[DuplicateGroup]:
    """Pictures within their kind's radius of a group's first (its centre); a photo and a
    page pair up within the smaller of the two."""
    collection = PerceptualHash.collection
    if not store.has_collection(collection):
        return []
    table = HashTable.load(store, collection)
    committed = np.array([_content(i) in paths for i in table.item_ids], dtype=bool)
    ids = [i for i, ok in zip(table.item_ids, committed, strict=True) if ok]
    hashes = table.hashes[committed]
    limit = table.radius_per_row(by_kind)[committed]
    pairs = [
        pair
        for pair in near_pairs(hashes, max(by_kind.values()))
        if pair.distance <= min(limit[pair.a], limit[pair.b])
    ]
    groups = star_groups(pairs, ids)
    if not groups:
        return []
    wanted = tuple({ids[row] for group in groups for row, _ in group})
    items = {r["id"]: r for r in store.get(ITEMS, Filter(ids=wanted), ["id", "kind", "page"])}
    out = []
    for group in groups:
        members = [
            DuplicateItem(
                ids[row],
                paths[_content(ids[row])][0],
                items[ids[row]]["kind"],
                items[ids[row]]["page"],
                distance,
            )
            for row, distance in group
            if ids[row] in items
        ]
        if len(members) > 1:
            out.append(DuplicateGroup("near", members))
    return sorted(out, key=lambda g: (g.items[0].path, g.items[0].page or 0))


def find_duplicates(store: Store, threshold: int | None = None) -> list[DuplicateGroup]:
    paths = _paths(store)
    return [*exact_groups(store, paths), *near_groups(store, paths, check_threshold(threshold))]


def duplicates_of(
    store: Store, table: HashTable | None, item_id: str, threshold: int | None = None
) -> list[DuplicateItem]:
    """The near-duplicates of one item (not the item itself), nearest first."""
    limit = check_threshold(threshold)
    if table is None:
        return []
    wanted = table.hash_of(item_id)
    if wanted is None:
        return []
    near = [(i, d) for i, d in table.near(wanted, limit, None) if i != item_id]
    if not near:
        return []
    paths = _paths_of(store, {_content(i) for i, _ in near})
    items = {
        r["id"]: r
        for r in store.get(ITEMS, Filter(ids=tuple(i for i, _ in near)), ["id", "kind", "page"])
    }
    return [
        DuplicateItem(i, paths[_content(i)][0], items[i]["kind"], items[i]["page"], d)
        for i, d in near
        if i in items and _content(i) in paths
    ]


def _paths_of(store: Store, contents: Iterable[str]) -> dict[str, list[str]]:
    paths: dict[str, list[str]] = {}
    rows = store.get(FILES, Filter(content_hashes=tuple(contents)), ["path", "content_hash"])
    for row in rows:
        paths.setdefault(row["content_hash"], []).append(row["path"])
    return {h: sorted(p) for h, p in paths.items()}


def _content(item_id: str) -> str:
    return item_id.rsplit(":", 1)[0]


def _item_order(item_id: str) -> tuple[str, int]:
    content, _, part = item_id.rpartition(":")
    number = "".join(c for c in part if c.isdigit())
    return content, int(number) if number else -1
