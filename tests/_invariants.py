"""Check that an index matches a file set exactly: nothing lost, duplicated or orphaned."""

from __future__ import annotations

import collections
import os
from pathlib import Path

from polylens.store.base import FILES, ITEMS, VEC_IMAGE, VEC_TEXT
from polylens.store.lance import LanceStore


def index_rows(index_dir: Path) -> dict[str, list[dict]]:
    store = LanceStore(index_dir / "lance")
    try:
        return {
            name: store.get(name) if store.has_collection(name) else []
            for name in (FILES, ITEMS, VEC_IMAGE, VEC_TEXT)
        }
    finally:
        store.close()


def check_consistent(index_dir: Path, expected_paths: set[str]) -> dict[str, list[dict]]:
    rows = index_rows(index_dir)
    files = rows[FILES]
    paths = [r["path"] for r in files]
    assert len(paths) == len(set(paths)), "duplicate file rows"
    assert set(paths) == expected_paths, (
        f"missing {sorted(expected_paths - set(paths))}, extra {sorted(set(paths) - expected_paths)}"
    )
    for name in (ITEMS, VEC_IMAGE, VEC_TEXT):
        ids = [r["id"] for r in rows[name]]
        dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
        assert not dupes, f"duplicate ids in {name}: {dupes[:5]}"
    referenced = {r["content_hash"] for r in files}
    item_hashes = {r["content_hash"] for r in rows[ITEMS]}
    assert item_hashes <= referenced, "items of content no file references (orphans)"
    item_ids = {r["id"] for r in rows[ITEMS]}
    for name in (VEC_IMAGE, VEC_TEXT):
        orphans = {r["item_id"] for r in rows[name]} - item_ids
        assert not orphans, f"{name} rows without an item: {sorted(orphans)[:5]}"
    per_hash = collections.Counter(r["content_hash"] for r in rows[ITEMS])
    for row in files:
        assert per_hash[row["content_hash"]] == row["n_items"], (
            f"{row['path']}: {per_hash[row['content_hash']]} items stored, {row['n_items']} expected"
        )
    return rows


def files_under(root: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                found.add(os.path.abspath(os.path.join(dirpath, name)))
    return found
