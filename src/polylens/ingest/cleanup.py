"""The end of a run: file rows of vanished paths go, then whatever no file references."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from polylens.ingest.sources import under_any
from polylens.store.base import FILES, ITEMS, Filter, Store


def stale_paths(
    known: Iterable[str],
    roots: Sequence[str],
    *,
    seen: Collection[str],
    unlisted: Sequence[str],
    failed: Collection[str],
) -> list[str]:
    """Indexed paths under ``roots`` that the walk no longer found, or that now fail
    (their old content is gone). A directory that could not be listed is not evidence of
    deletion: paths under it stay."""
    stale: list[str] = []
    for path in known:
        if not under_any(path, roots) or any(under_any(path, [d]) for d in unlisted):
            continue
        if path not in seen or path in failed:
            stale.append(path)
    return stale


def collect_garbage(store: Store, collections: Sequence[str]) -> None:
    """Delete items, and rows of the representations' ``collections``, of contents that no
    file row references any more."""
    referenced: set[Any] = store.distinct(FILES, "content_hash")
    for collection in (ITEMS, *collections):
        if not store.has_collection(collection):
            continue
        orphaned = store.distinct(collection, "content_hash") - referenced
        if orphaned:
            store.delete(collection, Filter(content_hashes=tuple(sorted(orphaned))))
