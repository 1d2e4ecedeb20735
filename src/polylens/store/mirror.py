"""A read-only copy of a small index's tables in Arrow IPC files, for one-shot searches.

Importing LanceDB alone takes about 1.4 s on two cores (its REST namespace client, pandas,
pyarrow.dataset), more than everything else a cold ``polylens search`` does once the
query towers run without torch. After each write, an index of up to ``MAX_ITEMS`` items
also gets its tables copied to ``mirror/`` as Arrow IPC files, stamped with the store's
change token; a one-shot reader whose token still matches memory-maps them with pyarrow
alone. Any commit moves the token, so a stale mirror is never read: the reader falls back
to the store. Large indexes get no mirror (the copy would double their disk use; searching
them is a server's job, whose in-memory read model is built once).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from polylens.errors import StoreError
from polylens.store.base import ITEMS, Filter, ScoredRow, Store
from polylens.store.lance import change_token
from polylens.store.schema import fixed_schema

log = logging.getLogger(__name__)

MIRROR_DIR = "mirror"
TOKEN_FILE = "token.json"
MAX_ITEMS = 50_000

_FILTER_COLUMNS = (
    ("kinds", "kind"),
    ("content_hashes", "content_hash"),
    ("ids", "id"),
    ("paths", "path"),
)


def write_mirror(store: Any, index_dir: Path, lance_dir: Path) -> bool:
    """Copy the store's tables next to it (or remove the copy when the index is too big).
    ``store`` is a LanceStore; the caller holds the index's write lock. A copy that
    cannot be written (a full disk) only costs one-shot searches their speed."""
    try:
        return _write(store, index_dir, lance_dir)
    except (OSError, StoreError) as exc:
        log.warning("no Arrow mirror of the index written (searches read the store): %s", exc)
        shutil.rmtree(index_dir / f"{MIRROR_DIR}.tmp", ignore_errors=True)
        shutil.rmtree(index_dir / MIRROR_DIR, ignore_errors=True)
        return False


def _write(store: Any, index_dir: Path, lance_dir: Path) -> bool:
    target = index_dir / MIRROR_DIR
    if store.count(ITEMS) > MAX_ITEMS:
        shutil.rmtree(target, ignore_errors=True)
        return False
    before = change_token(lance_dir)
    staging = index_dir / f"{MIRROR_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name in store.collections():
        schema = fixed_schema(name)
        table = store.scan(name, schema.names if schema is not None else store.columns(name))
        with pa.OSFile(str(staging / f"{name}.arrow"), "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
    if change_token(lance_dir) != before:  # a commit slipped in: no mirror beats a torn one
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        return False
    (staging / TOKEN_FILE).write_text(json.dumps({"token": repr(before)}))
    old = index_dir / f"{MIRROR_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return True


def open_mirror(index_dir: Path, lance_dir: Path) -> MirrorStore | None:
    """The mirror, if it is a copy of the store as it is now; else None."""
    directory = index_dir / MIRROR_DIR
    try:
        stamp = json.loads((directory / TOKEN_FILE).read_text())["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    token = change_token(lance_dir)
    if stamp != repr(token):
        return None
    mirror = MirrorStore(directory, token, lance_dir)
    try:
        # Map every table now: a run that swaps a new mirror in afterwards cannot pull a
        # file from under this reader (mapped files outlive their removal).
        for path in directory.glob("*.arrow"):
            mirror._table(path.stem)
    except StoreError:
        return None  # swapped while being opened
    return mirror if mirror.is_current() else None


class MirrorStore(Store):
    """The store's tables as they were at ``token``, memory-mapped, read-only."""

    def __init__(self, directory: Path, token: tuple[Any, ...], lance_dir: Path) -> None:
        self.directory = directory
        self._token = token
        self._lance_dir = lance_dir
        self._tables: dict[str, pa.Table] = {}

    def is_current(self) -> bool:
        """Still a copy of the store as it is now (no commit since)."""
        return change_token(self._lance_dir) == self._token

    def _table(self, name: str) -> pa.Table:
        table = self._tables.get(name)
        if table is None:
            path = self.directory / f"{name}.arrow"
            try:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_file(source).read_all()
            except (OSError, pa.ArrowInvalid) as exc:
                raise StoreError(f"cannot read {path}: {exc}") from exc
            self._tables[name] = table
        return table

    def _rows(self, name: str, where: Filter | None) -> pa.Table:
        table = self._table(name)
        if where is None or where.is_empty():
            return table
        mask = None
        for attr, column in _FILTER_COLUMNS:
            values = getattr(where, attr)
            if values is None:
                continue
            if column not in table.column_names:
                raise StoreError(f"collection {name!r} has no {column!r} to filter on")
            part = pc.is_in(table.column(column), value_set=pa.array(values, pa.string()))
            mask = part if mask is None else pc.and_(mask, part)
        return table if mask is None else table.filter(mask)

    # -- reads -----------------------------------------------------------------------
    def has_collection(self, name: str) -> bool:
        return name in self._tables or (self.directory / f"{name}.arrow").is_file()

    def vector_dim(self, name: str) -> int | None:
        if not self.has_collection(name):
            return None
        return int(self._table(name).schema.field("vector").type.list_size)

    def get(
        self, name: str, where: Filter | None = None, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        if not self.has_collection(name):
            return []
        rows = self._rows(name, where)
        return (rows.select(list(columns)) if columns else rows).to_pylist()

    def scan(self, name: str, columns: Sequence[str], where: Filter | None = None) -> pa.Table:
        if not self.has_collection(name):
            raise StoreError(f"collection {name!r} does not exist in {self.directory}")
        return self._rows(name, where).select(list(columns))

    def count(self, name: str, where: Filter | None = None) -> int:
        return self._rows(name, where).num_rows if self.has_collection(name) else 0

    def distinct(self, name: str, column: str) -> set[Any]:
        if not self.has_collection(name):
            return set()
        return set(self._table(name).column(column).unique().to_pylist())

    def change_token(self) -> Hashable | None:
        return self._token

    # -- what a read-only copy cannot do ----------------------------------------------
    def _read_only(self, *_: Any, **__: Any) -> Any:
        raise StoreError("the index's mirror is read-only: open the index's store to write")

    ensure_collection = upsert = delete = drop_collection = _read_only  # type: ignore[assignment]

    def search_vector(self, *args: Any, **kwargs: Any) -> list[ScoredRow]:
        return self._read_only()

    def search_text(self, *args: Any, **kwargs: Any) -> list[ScoredRow]:
        return self._read_only()

    def optimize(self, *, ann_min_rows: int) -> None:
        self._read_only()

    def close(self) -> None:
        self._tables.clear()
