"""Check that an index matches a file set exactly: nothing lost, duplicated or orphaned."""

from __future__ import annotations

import collections
import os
from pathlib import Path

from polylens.config import load_config
from polylens.representations.image_text import ImageText
from polylens.representations.text_embedding import TextEmbedding
from polylens.store.base import FILES, ITEMS
from polylens.store.lance import LanceStore
from polylens.store.locations import open_store

VEC_IMAGE, VEC_TEXT = ImageText.collection, TextEmbedding.collection


def index_rows(index_dir: Path) -> dict[str, list[dict]]:
    spec = load_config(index_dir, {}).store
    if spec:  # a store named by URL (Qdrant): what it holds is what is committed
        other = open_store(spec, index_dir, index_dir / "lance")
        try:
            return {name: other.get(name) for name in (FILES, ITEMS, VEC_IMAGE, VEC_TEXT)}
        finally:
            other.close()
    store = LanceStore(index_dir / "lance")
    try:
        return {
            name: store.get(name) if _committed(index_dir, store, name) else []
            for name in (FILES, ITEMS, VEC_IMAGE, VEC_TEXT)
        }
    finally:
        store.close()


def _committed(index_dir: Path, store: LanceStore, name: str) -> bool:
    """A collection whose creation never committed (a run killed, or out of space, inside
    create_table) holds nothing; the next run recreates it."""
    versions = index_dir / "lance" / f"{name}.lance" / "_versions"
    return store.has_collection(name) and any(versions.glob("*.manifest"))


def check_consistent(
    index_dir: Path, expected_paths: set[str], *, vectors: bool = True
) -> dict[str, list[dict]]:
    """The index holds exactly ``expected_paths``, each with all its items and vectors,
    and nothing else: no duplicates, no orphaned items or vectors."""
    rows = check_committed(index_dir, vectors=vectors)
    paths = {r["path"] for r in rows[FILES]}
    assert paths == expected_paths, (
        f"missing {sorted(expected_paths - paths)}, extra {sorted(paths - expected_paths)}"
    )
    referenced = {r["content_hash"] for r in rows[FILES]}
    for name in (ITEMS, VEC_IMAGE, VEC_TEXT):
        orphans = {r["content_hash"] for r in rows[name]} - referenced
        assert not orphans, f"{name} rows of content no file references: {sorted(orphans)[:5]}"
    item_ids = {r["id"] for r in rows[ITEMS]}
    for name in (VEC_IMAGE, VEC_TEXT):
        orphans = {r["item_id"] for r in rows[name]} - item_ids
        assert not orphans, f"{name} rows without an item: {sorted(orphans)[:5]}"
    return rows


def check_committed(index_dir: Path, *, vectors: bool = True) -> dict[str, list[dict]]:
    """What any run, even a killed one, must leave: no duplicate rows, and every file row's
    content complete (``n_items`` items, each with its vectors). Items and vectors of
    content no file row references yet (a killed run's partial work) are allowed."""
    rows = index_rows(index_dir)
    files = rows[FILES]
    paths = [r["path"] for r in files]
    assert len(paths) == len(set(paths)), "duplicate file rows"
    for name in (ITEMS, VEC_IMAGE, VEC_TEXT):
        ids = [r["id"] for r in rows[name]]
        dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
        assert not dupes, f"duplicate ids in {name}: {dupes[:5]}"
    per_hash = collections.Counter(r["content_hash"] for r in rows[ITEMS])
    for row in files:
        assert per_hash[row["content_hash"]] == row["n_items"], (
            f"{row['path']}: {per_hash[row['content_hash']]} items stored, {row['n_items']} expected"
        )
    if vectors:
        _check_vectors(index_dir, rows, {r["content_hash"] for r in files})
    return rows


def _check_vectors(index_dir: Path, rows: dict[str, list[dict]], complete: set[str]) -> None:
    """Every item of complete content has exactly the vectors ingestion gives it, and every
    vector agrees with its item."""
    config = load_config(index_dir, {})
    items = {r["id"]: r for r in rows[ITEMS]}
    for name in (VEC_IMAGE, VEC_TEXT):
        for vec in rows[name]:
            item = items.get(vec["item_id"])
            if item is not None:
                assert (vec["content_hash"], vec["kind"]) == (item["content_hash"], item["kind"]), (
                    f"{name} row {vec['id']} disagrees with its item"
                )
    image_ids = {r["id"] for r in rows[VEC_IMAGE]}
    text_ids = collections.defaultdict(set)
    for vec in rows[VEC_TEXT]:
        text_ids[vec["item_id"]].add(vec["id"])
    for item in items.values():
        if item["content_hash"] not in complete:
            continue
        wants_image = item["kind"] != "text" or (
            config.text_in_image_space and bool(item["text"].strip())
        )
        if rows[VEC_IMAGE] and wants_image:
            assert item["id"] in image_ids, f"item {item['id']} has no image-space vector"
        if rows[VEC_TEXT]:
            # windows follow the model's tokens: one or more, numbered without gaps
            got = text_ids.get(item["id"], set())
            count = len(got) if item["text"].strip() else 0
            assert got or not item["text"].strip(), f"item {item['id']} has no text vector"
            expected = {f"{item['id']}#w{n}" for n in range(count)}
            assert text_ids.get(item["id"], set()) == expected, (
                f"item {item['id']}: text vectors {sorted(text_ids.get(item['id'], ()))}, "
                f"expected {sorted(expected)}"
            )


def files_under(root: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                found.add(os.path.abspath(os.path.join(dirpath, name)))
    return found
