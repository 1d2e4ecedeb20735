"""Rows to Qdrant points and back: point ids, payloads, vectors, BM25 sparse vectors and
typed filters. Kept apart from the client calls so each can be read (and tested) alone.

A polylens row is keyed by a string (``path`` for files, ``id`` for the rest); Qdrant
keys points by unsigned integers or UUIDs, so a point's id is the UUIDv5 of its row's key
(the same row always lands on the same point: upserts are idempotent) and the key itself
stays in the payload. Columns named ``vector`` become the point's dense vector, binary
columns are carried as base64, and every other column is a payload field of its own.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from polylens.analysis import K1, B, analyse
from polylens.store.base import Filter, chunked

_NAMESPACE = uuid.UUID("9b7d2f0e-4a39-5c1e-8f0b-6d6f6c79656e")
VECTOR = "vector"
"""The dense vector's name in a point (and the column it comes from)."""
SPARSE = "bm25"
"""The items' BM25 sparse vector."""
IN_CHUNK = 1000
"""Values per match-any condition: a filter on a longer list is split into requests."""


def point_id(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, key))


def term_id(term: str) -> int:
    """A term's sparse-vector dimension: 32 bits of its hash (no vocabulary to keep in step
    across writers; two terms of one index share a dimension about once in 10^5 pairs of
    a 300k-term vocabulary, which only merges their statistics)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def is_binary(field: pa.Field) -> bool:
    return pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)


def payload_of(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for field in schema:
        if field.name == VECTOR:
            continue
        value = row.get(field.name)
        if value is not None and is_binary(field):
            value = base64.b64encode(bytes(value)).decode("ascii")
        payload[field.name] = value
    return payload


def row_of(payload: dict[str, Any], schema: pa.Schema, columns: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in columns:
        if name == VECTOR:
            continue
        value = payload.get(name)
        if value is not None and is_binary(schema.field(name)):
            value = base64.b64decode(value)
        row[name] = value
    return row


def table_of(
    rows: list[dict[str, Any]], vectors: list[Any] | None, schema: pa.Schema, columns: Sequence[str]
) -> pa.Table:
    """Rows (and their dense vectors, in the same order) as one Arrow table of ``columns``."""
    wanted = pa.schema([schema.field(c) for c in columns])
    arrays = []
    for field in wanted:
        if field.name == VECTOR:
            dim = field.type.list_size
            flat = np.asarray(vectors or [], dtype=np.float32).reshape(-1)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim))
        else:
            arrays.append(pa.array([r[field.name] for r in rows], type=field.type))
    return pa.Table.from_arrays(arrays, schema=wanted)


# -- BM25 --------------------------------------------------------------------------------
def term_counts(text: str) -> Counter[int]:
    return Counter(term_id(t) for t in analyse(text))


def bm25_vector(counts: Counter[int], avgdl: float) -> tuple[list[int], list[float]]:
    """A document's BM25 term weights without IDF (Qdrant's IDF modifier multiplies it in
    at query time, from the collection's own document frequencies, with the same formula as
    the in-memory BM25): tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))."""
    length = sum(counts.values())
    norm = K1 * (1.0 - B + B * length / max(avgdl, 1e-9))
    indices = sorted(counts)
    return indices, [counts[i] * (K1 + 1.0) / (counts[i] + norm) for i in indices]


def query_terms(text: str) -> list[int]:
    """Each distinct query term once, as the in-memory BM25 scores them."""
    return sorted({term_id(t) for t in analyse(text)})


# -- filters -----------------------------------------------------------------------------
def filters(where: Filter | None, key: str) -> list[Any] | None:
    """Qdrant filters for ``where`` (one per chunk of its longest value list; None for no
    constraint), or ``[]`` when it can match nothing (an empty value list)."""
    from qdrant_client import models

    if where is None or where.is_empty():
        return None
    fixed: list[Any] = []
    big: tuple[str, tuple[str, ...]] | None = None
    for column, values in (
        ("kind", where.kinds),
        ("content_hash", where.content_hashes),
        ("id", where.ids),
        ("path", where.paths),
    ):
        if values is None:
            continue
        if not values:
            return []
        if len(values) > IN_CHUNK and big is None:
            big = (column, values)
        else:
            fixed.append(_condition(column, values, key))
    if big is None:
        return [models.Filter(must=fixed)]
    column, values = big
    return [
        models.Filter(must=[*fixed, _condition(column, part, key)])
        for part in chunked(values, IN_CHUNK)
    ]


def _condition(column: str, values: Sequence[str], key: str) -> Any:
    from qdrant_client import models

    if column == key:  # the row key is the point id: Qdrant's own id lookup
        return models.HasIdCondition(has_id=[point_id(v) for v in values])
    return models.FieldCondition(key=column, match=models.MatchAny(any=list(values)))
