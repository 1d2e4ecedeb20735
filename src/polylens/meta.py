"""What an index remembers about how it was built, kept beside the data.

``index.json`` records the schema version, the models whose vectors the index holds
(name as given, what it resolved to, dimension) and the roots that were indexed. Opening
an index rebuilds its query encoders from this record, and a run that asks for other
models is refused with a message, so vectors from two models never mix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from polylens.errors import IndexMismatchError, StoreError
from polylens.store.schema import SCHEMA_VERSION

META_FILE = "index.json"
QUERY_TOWERS_DIR = "query-encoders"
"""Query towers exported to ONNX (``encoders.onnx_queries``), one folder per representation."""
IMAGE_TOWERS_DIR = "image-encoders"
"""Image towers exported to ONNX Runtime (``encoders.onnx_images``), one per representation."""
LAST_RUN_FILE = "last_run.json"


@dataclass
class ModelRecord:
    """What one representation of the index is built with: its model (name as given, what
    it resolved to) or, without a model, its algorithm, and ``version``. ``dim`` is None
    while the index holds no vectors of a model (unavailable or disabled): then another
    model may still take its place.
    ``complete`` is False from the run that first loads the model until every item
    indexed before has its vectors (the back-fill), so a killed back-fill resumes."""

    name: str
    resolved: str | None = None
    dim: int | None = None
    error: str | None = None
    error_summary: str | None = None
    complete: bool = True
    version: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelRecord | None:
        if data is None:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class IndexMeta:
    schema_version: int = SCHEMA_VERSION
    created_at: float = field(default_factory=time.time)
    representations: dict[str, ModelRecord] | None = None
    """By name, in the index's order; None until the first run records them."""
    roots: list[str] = field(default_factory=list)
    polylens_version: str = ""

    def record(self, name: str) -> ModelRecord | None:
        return (self.representations or {}).get(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexMeta:
        records = data.get("representations")
        if records is None and ("image_model" in data or "text_model" in data):
            # Written before representations were units: the three it always had.
            records = {"image": data.get("image_model"), "text": data.get("text_model")}
            records = {k: v for k, v in records.items() if v is not None}
            records["bm25"] = {"name": "bm25", "resolved": "bm25-snowball-english"}
        return cls(
            schema_version=int(data.get("schema_version", 0)),
            created_at=float(data.get("created_at", 0.0)),
            representations=None
            if records is None
            else {
                name: record
                for name, raw in records.items()
                if (record := ModelRecord.from_dict(raw)) is not None
            },
            roots=list(data.get("roots", [])),
            polylens_version=str(data.get("polylens_version", "")),
        )


def read_meta(index_dir: Path) -> IndexMeta | None:
    path = index_dir / META_FILE
    if not path.is_file():
        return None
    try:
        meta = IndexMeta.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise IndexMismatchError(f"{path} is not a valid polylens index record: {exc}") from exc
    if meta.schema_version != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"the index at {index_dir} has schema version {meta.schema_version}, this polylens "
            f"reads version {SCHEMA_VERSION}. Build a new index with `polylens index PATHS "
            f"--index NEW_DIR`."
        )
    return meta


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename so a crash never leaves a half-written file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write-then-rename so a crash never leaves a half-written file; a failed write
    (disk full, read-only directory) leaves the old file and no temporary behind."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {_os_reason(exc)}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return str(exc)


def write_meta(index_dir: Path, meta: IndexMeta) -> None:
    write_json_atomic(index_dir / META_FILE, meta.to_dict())
