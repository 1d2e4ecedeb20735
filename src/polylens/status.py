"""What ``polylens status`` reports: counts, models (with why one is unavailable), size."""

from __future__ import annotations

import json
from pathlib import Path

from polylens.config import IndexConfig
from polylens.meta import LAST_RUN_FILE, IndexMeta, ModelRecord
from polylens.slots import ROLES, ModelSlots
from polylens.store.base import FILES, ITEMS, Filter, Store
from polylens.types import KINDS, IndexStatus, ModelInfo, RunSummary, SearchAvailability


def index_status(
    path: Path, store: Store, meta: IndexMeta, config: IndexConfig, models: ModelSlots
) -> IndexStatus:
    items = {kind: store.count(ITEMS, Filter(kinds=(kind,))) for kind in KINDS}
    image_reason = models.unavailable_reason("image", meta)
    return IndexStatus(
        path=str(path),
        files=store.count(FILES),
        items=items,
        models=[*_model_infos(meta), _ocr_info(config)],
        roots=list(meta.roots),
        size_bytes=sum(_size_of(p) for p in path.rglob("*")),
        schema_version=meta.schema_version,
        last_run=_last_run(path),
        image_search=SearchAvailability(available=image_reason is None, reason=image_reason),
    )


def _model_infos(meta: IndexMeta) -> list[ModelInfo]:
    infos = []
    for role in ROLES:
        record: ModelRecord | None = getattr(meta, f"{role}_model")
        if record is None:
            continue
        available = record.dim is not None
        reason = summary = None
        if record.resolved == "none":
            reason = summary = "disabled"
        elif not available:
            reason = record.error or "could not be loaded when the index was built"
            summary = record.error_summary or reason
        elif not record.complete:
            reason = summary = "items indexed before it loaded lack its vectors until the next run"
        infos.append(
            ModelInfo(role, record.name, record.resolved, record.dim, available, reason, summary)
        )
    return infos


def _ocr_info(config: IndexConfig) -> ModelInfo:
    return ModelInfo("ocr", "rapidocr-onnxruntime" if config.ocr else "off", None, None, config.ocr)


def _last_run(path: Path) -> RunSummary | None:
    last_path = path / LAST_RUN_FILE
    if not last_path.is_file():
        return None
    try:
        return RunSummary.from_dict(json.loads(last_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None


def _size_of(path: Path) -> int:
    """Bytes of a regular file, 0 for anything else or a file removed meanwhile (the store
    compacts and deletes files while a concurrent run writes)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0
