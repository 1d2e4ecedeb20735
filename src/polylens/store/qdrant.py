"""Qdrant behind the store interface: a server or cluster (``qdrant://``), or qdrant-client's
local mode (``qdrant+local:DIR``, ``qdrant+memory:``) for small use and tests.

Searches run in Qdrant (:attr:`searches_itself`): dense vectors are a named cosine vector,
BM25 is a sparse vector on items whose term weights polylens computes with its own
analyser (:mod:`polylens.analysis`) and whose IDF Qdrant applies from the collection's
document frequencies, so no client holds a whole-index read model. Every write waits for
Qdrant to apply it (``wait=True``) and is keyed by a deterministic point id, so a run
killed mid-write and run again converges to the same points.

A small state collection beside the data holds each collection's Arrow schema (Qdrant has
none; reads rebuild typed tables from it), the BM25 length statistics, and a generation
that every write changes: the store's change token.
"""

from __future__ import annotations

import base64
import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import pyarrow as pa

from polylens._lazy import import_or_raise
from polylens.errors import (
    ConfigError,
    IndexMismatchError,
    PolylensError,
    StoreError,
    StoreUnavailableError,
)
from polylens.store.base import ITEMS, Filter, ScoredRow, Store
from polylens.store.locations import QdrantLocation
from polylens.store.qdrant_rows import (
    SPARSE,
    VECTOR,
    bm25_vector,
    filters,
    payload_of,
    point_id,
    query_terms,
    row_of,
    table_of,
    term_counts,
)
from polylens.store.schema import fixed_schema, key_of, vector_schema

log = logging.getLogger(__name__)
T = TypeVar("T")

_STATE = "_state"
_GENERATION = point_id("generation")
_PAGE = 1024
_INDEXED = ("kind", "content_hash", "item_id")


def _wrap(fn: Callable[..., T]) -> Callable[..., T]:
    """Qdrant's and the network's failures as StoreError with a plain first sentence."""

    @functools.wraps(fn)
    def inner(self: QdrantStore, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(self, *args, **kwargs)
        except PolylensError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client raises many unrelated types
            raise self._error(fn.__name__, exc) from exc

    return inner


class QdrantStore(Store):
    searches_itself: ClassVar[bool] = True

    def __init__(self, location: QdrantLocation) -> None:
        qdrant = import_or_raise("qdrant_client", package="qdrant-client", extra="qdrant")
        self.location = location
        self.prefix = location.prefix or ""
        self._models = qdrant.models
        try:
            if location.mode == "memory":
                self._client = qdrant.QdrantClient(location=":memory:")
            elif location.mode == "local":
                assert location.path is not None
                location.path.mkdir(parents=True, exist_ok=True)
                self._client = qdrant.QdrantClient(path=str(location.path))
            else:
                self._client = qdrant.QdrantClient(
                    host=location.host,
                    port=location.port,
                    https=location.https,
                    api_key=location.api_key(),
                    timeout=max(1, round(location.timeout)),
                    check_compatibility=False,  # a version probe per open; errors say enough
                )
        except (ConfigError, StoreError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._error("open", exc) from exc
        self._schemas: dict[str, pa.Schema] = {}
        self._state_ready = False

    # -- errors ----------------------------------------------------------------------
    def _error(self, during: str, exc: BaseException) -> StoreError:
        where = self.location.describe()
        text = str(exc) or type(exc).__name__
        lowered = text.lower()
        status = getattr(exc, "status_code", None)
        if status in (401, 403) or "unauthor" in lowered or "forbidden" in lowered:
            key = f"${self.location.api_key_env}" if self.location.api_key_env else "no key"
            return StoreUnavailableError(
                f"{where} refused the API key ({key}); check the key, or the URL's "
                f"api_key_env (status {status})"
            )
        if "already accessed by another instance" in lowered:
            return StoreUnavailableError(
                f"{where} is open in another process: qdrant+local: allows one process at "
                f"a time; wait for it, or run a Qdrant server for concurrent use"
            )
        if "timed out" in lowered or "timeout" in type(exc).__name__.lower():
            return StoreUnavailableError(
                f"{where} did not answer within {self.location.timeout:g} s during {during}; "
                f"nothing was half-written that a re-run cannot finish"
            )
        if any(s in lowered for s in ("connect", "refused", "resolve", "unreachable", "reset")):
            return StoreUnavailableError(
                f"{where} is unreachable ({text.splitlines()[0]}); start it or fix --store; "
                f"work committed so far is kept"
            )
        return StoreError(f"{where} failed during {during}: {text.splitlines()[0]}")

    # -- collections and their schemas -------------------------------------------------
    def _name(self, collection: str) -> str:
        return f"{self.prefix}{collection}"

    def _state(self) -> str:
        name = self._name(_STATE)
        if not self._state_ready:
            if not self._client.collection_exists(name):
                self._client.create_collection(name, vectors_config={})
            self._state_ready = True
        return name

    def _schema(self, collection: str) -> pa.Schema | None:
        schema = self._schemas.get(collection)
        if schema is not None:
            return schema
        found = self._client.retrieve(self._state(), [point_id(f"schema:{collection}")])
        if not found or not self._client.collection_exists(self._name(collection)):
            return None
        raw = base64.b64decode(found[0].payload["schema"])
        schema = pa.ipc.read_schema(pa.py_buffer(raw))
        self._schemas[collection] = schema
        return schema

    def _known(self, collection: str) -> pa.Schema:
        schema = self._schema(collection)
        if schema is None:
            raise StoreError(
                f"collection {collection!r} does not exist in {self.location.describe()}"
            )
        return schema

    @_wrap
    def has_collection(self, name: str) -> bool:
        return self._schema(name) is not None

    @_wrap
    def ensure_collection(
        self, name: str, *, vector_dim: int | None = None, schema: pa.Schema | None = None
    ) -> None:
        """Create ``name`` (its schema recorded first, so a run killed in between finds
        the collection's description and creates the rest), or check the existing one."""
        existing = self._schema(name)
        if existing is None:
            schema = fixed_schema(name) or schema
            if schema is None:
                if vector_dim is None:
                    raise StoreError(f"vector collection {name!r} needs a dimension")
                schema = vector_schema(vector_dim)
            self._create(name, schema)
            return
        if vector_dim is not None and VECTOR in existing.names:
            have = existing.field(VECTOR).type.list_size
            if have != vector_dim:
                raise IndexMismatchError(
                    f"collection {self._name(name)!r} in {self.location.describe()} holds "
                    f"{have}-dimensional vectors, but this index's model makes {vector_dim}; "
                    f"use another prefix in the store URL, or drop that collection"
                )

    def _create(self, name: str, schema: pa.Schema) -> None:
        m = self._models
        raw = base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
        stats = {"len_sum": 0.0, "len_n": 0} if name == ITEMS else {}
        self._client.upsert(
            self._state(),
            [
                m.PointStruct(
                    id=point_id(f"schema:{name}"), vector={}, payload={"schema": raw, **stats}
                )
            ],
            wait=True,
        )
        target = self._name(name)
        if not self._client.collection_exists(target):
            vectors: dict[str, Any] = {}
            if VECTOR in schema.names:
                dim = schema.field(VECTOR).type.list_size
                vectors[VECTOR] = m.VectorParams(size=dim, distance=m.Distance.COSINE)
            sparse = (
                {SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)} if name == ITEMS else None
            )
            self._client.create_collection(
                target,
                vectors_config=vectors,
                sparse_vectors_config=sparse,
                shard_number=self.location.shards,
                replication_factor=self.location.replicas,
            )
        if self.location.mode == "server":  # local mode has no payload indexes
            for column in (c for c in _INDEXED if c in schema.names):
                self._client.create_payload_index(
                    target, column, m.PayloadSchemaType.KEYWORD, wait=True
                )
        self._schemas[name] = schema
        self._bump()

    @_wrap
    def drop_collection(self, name: str) -> None:
        self._schemas.pop(name, None)
        if self._client.collection_exists(self._name(name)):
            self._client.delete_collection(self._name(name))
        self._client.delete(self._state(), points_selector=[point_id(f"schema:{name}")], wait=True)
        self._bump()

    def vector_dim(self, name: str) -> int | None:
        schema = self._schema(name)
        if schema is None or VECTOR not in schema.names:
            return None
        return int(schema.field(VECTOR).type.list_size)

    def collections(self) -> list[str]:
        names = [c.name for c in self._client.get_collections().collections]
        mine = [n.removeprefix(self.prefix) for n in names if n.startswith(self.prefix)]
        return sorted(n for n in mine if n != _STATE and self.has_collection(n))

    # -- writes ----------------------------------------------------------------------
    @_wrap
    def upsert(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        schema = self._known(name)
        m = self._models
        key = key_of(name)
        avgdl = self._avgdl(rows) if name == ITEMS else 0.0
        points = []
        for row in rows:
            vector: dict[str, Any] = {}
            if VECTOR in schema.names:
                vector[VECTOR] = np.asarray(row[VECTOR], dtype=np.float32).tolist()
            if name == ITEMS:
                indices, values = bm25_vector(term_counts(row.get("text") or ""), avgdl)
                vector[SPARSE] = m.SparseVector(indices=indices, values=values)
            points.append(
                m.PointStruct(
                    id=point_id(str(row[key])), vector=vector, payload=payload_of(row, schema)
                )
            )
        self._client.upsert(self._name(name), points, wait=True)
        self._bump()

    def _avgdl(self, rows: Sequence[dict[str, Any]]) -> float:
        """The mean document length BM25 normalises by. Qdrant keeps document frequencies
        (its IDF modifier) but not lengths, so the store keeps a running mean over every
        item written, this batch included; an item keeps the mean of its own write (the
        in-memory BM25 uses today's mean: rankings agree exactly on an index written in
        one batch and drift little as the mean settles)."""
        m = self._models
        state = self._state()
        record = self._client.retrieve(state, [point_id(f"schema:{ITEMS}")])[0]
        payload = dict(record.payload)
        lengths = [sum(term_counts(r.get("text") or "").values()) for r in rows]
        payload["len_sum"] = float(payload.get("len_sum", 0.0)) + float(sum(lengths))
        payload["len_n"] = int(payload.get("len_n", 0)) + len(lengths)
        self._client.upsert(
            state, [m.PointStruct(id=record.id, vector={}, payload=payload)], wait=True
        )
        return payload["len_sum"] / max(payload["len_n"], 1)

    @_wrap
    def delete(self, name: str, where: Filter) -> None:
        if where.is_empty():
            raise StoreError("refusing to delete with an empty filter")
        if self._schema(name) is None:
            return
        for condition in filters(where, key_of(name)) or []:
            self._client.delete(
                self._name(name),
                points_selector=self._models.FilterSelector(filter=condition),
                wait=True,
            )
        self._bump()

    def _bump(self) -> None:
        """A new generation after every write: readers anywhere see the store changed."""
        m = self._models
        self._client.upsert(
            self._state(),
            [m.PointStruct(id=_GENERATION, vector={}, payload={"generation": uuid.uuid4().hex})],
            wait=True,
        )

    # -- reads -----------------------------------------------------------------------
    def _scroll(
        self, name: str, where: Filter | None, columns: Sequence[str], vectors: bool
    ) -> tuple[list[dict[str, Any]], list[Any]]:
        schema = self._known(name)
        conditions = filters(where, key_of(name))
        rows: list[dict[str, Any]] = []
        found: list[Any] = []
        payload = [c for c in columns if c != VECTOR]
        for condition in [None] if conditions is None else conditions:
            offset = None
            while True:
                points, offset = self._client.scroll(
                    self._name(name),
                    scroll_filter=condition,
                    limit=_PAGE,
                    offset=offset,
                    with_payload=payload or False,
                    with_vectors=[VECTOR] if vectors else False,
                )
                for point in points:
                    rows.append(row_of(point.payload or {}, schema, columns))
                    if vectors:
                        found.append(point.vector[VECTOR])
                if offset is None:
                    break
        return rows, found

    @_wrap
    def get(
        self, name: str, where: Filter | None = None, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        schema = self._schema(name)
        if schema is None:
            return []
        wanted = list(columns) if columns else schema.names
        rows, vectors = self._scroll(name, where, wanted, VECTOR in wanted)
        if VECTOR in wanted:
            for row, vector in zip(rows, vectors, strict=True):
                row[VECTOR] = list(vector)
        return [{c: row.get(c) for c in wanted} for row in rows]

    @_wrap
    def scan(self, name: str, columns: Sequence[str], where: Filter | None = None) -> pa.Table:
        schema = self._known(name)
        rows, vectors = self._scroll(name, where, columns, VECTOR in columns)
        return table_of(rows, vectors, schema, columns)

    def sample(self, name: str, n: int, columns: Sequence[str]) -> pa.Table:
        """The first ``n`` points in id order: ids are hashes of the rows' keys, so this is
        a fixed pseudo-random sample, read in one request whatever the collection's size."""
        schema = self._known(name)
        vectors = VECTOR in columns
        points, _ = self._client.scroll(
            self._name(name),
            limit=n,
            with_payload=[c for c in columns if c != VECTOR] or False,
            with_vectors=[VECTOR] if vectors else False,
        )
        rows = [row_of(p.payload or {}, schema, columns) for p in points]
        return table_of(
            rows, [p.vector[VECTOR] for p in points] if vectors else None, schema, columns
        )

    @_wrap
    def count(self, name: str, where: Filter | None = None) -> int:
        if self._schema(name) is None:
            return 0
        conditions = filters(where, key_of(name))
        return sum(
            self._client.count(self._name(name), count_filter=c, exact=True).count
            for c in ([None] if conditions is None else conditions)
        )

    def describe(self) -> str:
        return f"{self.location.describe()}, collections {self.prefix}*"

    def change_token(self) -> Any:
        try:
            found = self._client.retrieve(self._state(), [_GENERATION])
        except Exception as exc:  # noqa: BLE001
            raise self._error("change_token", exc) from exc
        return ("qdrant", found[0].payload["generation"] if found else None)

    # -- server-side search ------------------------------------------------------------
    def _query(
        self, name: str, k: int, where: Filter | None, columns: list[str], **query: Any
    ) -> list[ScoredRow]:
        if self._schema(name) is None or k <= 0:
            return []
        conditions = filters(where, key_of(name))
        found: list[ScoredRow] = []
        for condition in [None] if conditions is None else conditions:
            result = self._client.query_points(
                self._name(name), query_filter=condition, limit=k, with_payload=columns, **query
            )
            found.extend(
                ScoredRow(row=dict(p.payload or {}), score=float(p.score)) for p in result.points
            )
        found.sort(key=lambda r: -r.score)
        return found[:k]

    @_wrap
    def search_vector(
        self, name: str, vector: np.ndarray, k: int, where: Filter | None = None
    ) -> list[ScoredRow]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1).tolist()
        return self._query(
            name, k, where, ["id", "item_id", "content_hash", "kind"], query=query, using=VECTOR
        )

    @_wrap
    def search_text(
        self, name: str, query: str, k: int, where: Filter | None = None
    ) -> list[ScoredRow]:
        terms = query_terms(query)
        if name != ITEMS or not terms:
            return []
        sparse = self._models.SparseVector(indices=terms, values=[1.0] * len(terms))
        return self._query(
            name, k, where, ["id", "content_hash", "kind"], query=sparse, using=SPARSE
        )

    @_wrap
    def text_attainable(self, name: str, query: str) -> float:
        """The most an item could score for ``query`` (as the in-memory BM25's
        ``attainable``): each distinct term's best weight in the collection, one request
        for all of them; a term no item has counts at the IDF of one document."""
        terms = query_terms(query)
        if name != ITEMS or not terms:
            return 0.0
        m = self._models
        requests = [
            m.QueryRequest(query=m.SparseVector(indices=[t], values=[1.0]), using=SPARSE, limit=1)
            for t in terms
        ]
        answers = self._client.query_batch_points(self._name(name), requests=requests)
        n_docs = self.count(name)
        unseen = float(np.log1p((n_docs + 0.5) / 0.5))
        return sum(a.points[0].score if a.points else unseen for a in answers)

    def optimize(self, *, ann_min_rows: int) -> None:
        """Nothing to do: Qdrant indexes (HNSW, payload, sparse) as points arrive."""

    def close(self) -> None:
        try:
            self._client.close()
        except Exception as exc:  # noqa: BLE001 - closing must not mask the run's outcome
            log.debug("closing the Qdrant client: %s", exc)
