"""Arrow schemas of polylens collections and the schema version recorded in each index.

Bump SCHEMA_VERSION whenever a column changes meaning; opening an index with another
version fails with a message instead of misreading data.
"""

from __future__ import annotations

import pyarrow as pa

from polylens.store.base import FILES, ITEMS

SCHEMA_VERSION = 1

FILES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("file_kind", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("mtime_ns", pa.int64(), nullable=False),
        pa.field("n_items", pa.int32(), nullable=False),
        pa.field("indexed_at", pa.float64(), nullable=False),
    ]
)

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("page", pa.int32(), nullable=True),
        pa.field("chunk", pa.int32(), nullable=True),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_source", pa.string(), nullable=True),
        pa.field("width", pa.int32(), nullable=True),
        pa.field("height", pa.int32(), nullable=True),
        # a video segment's time range in seconds (added after schema 1's first
        # release: LanceStore adds them to an older index's items when it opens it)
        pa.field("start", pa.float64(), nullable=True),
        pa.field("end", pa.float64(), nullable=True),
    ]
)


def representation_schema(*columns: pa.Field) -> pa.Schema:
    """Rows of a representation's collection: each points at an item (an item may own
    several: long texts, multi-vector pages), then the representation's own columns."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
            pa.field("kind", pa.string(), nullable=False),
            *columns,
        ]
    )


def vector_schema(dim: int) -> pa.Schema:
    return representation_schema(pa.field("vector", pa.list_(pa.float32(), dim), nullable=False))


KEYS = {FILES: "path"}


def key_of(collection: str) -> str:
    return KEYS.get(collection, "id")


def fixed_schema(collection: str) -> pa.Schema | None:
    return {FILES: FILES_SCHEMA, ITEMS: ITEMS_SCHEMA}.get(collection)
