"""What ``polylens status`` reports: counts, representations and their models (with why
one is unavailable), size."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from polylens.config import IndexConfig
from polylens.lineup import Lineup
from polylens.meta import IMAGE_TOWERS_DIR, LAST_RUN_FILE, QUERY_TOWERS_DIR, IndexMeta, ModelRecord
from polylens.representations.base import Representation
from polylens.store.base import FILES, ITEMS, Filter, Store
from polylens.types import (
    KINDS,
    IndexStatus,
    ModelInfo,
    RepresentationInfo,
    RunSummary,
    SearchAvailability,
)


def index_status(
    path: Path, store: Store, meta: IndexMeta, config: IndexConfig, lineup: Lineup
) -> IndexStatus:
    items = {kind: store.count(ITEMS, Filter(kinds=(kind,))) for kind in KINDS}
    reps = lineup.recorded(meta)
    unavailable = lineup.unavailable(meta)
    image_reason = lineup.image_query_refusal(meta)
    if not any(r.answers("image") for r in reps):
        image_reason = "the index has no representation that answers image queries"
    return IndexStatus(
        path=str(path),
        files=store.count(FILES),
        items=items,
        models=[*_model_infos(meta, reps), _ocr_info(config)],
        representations=[_rep_info(rep, meta, store, unavailable, path) for rep in reps]
        + [
            RepresentationInfo(name, "", (), None, None, None, False, "not installed")
            for name in lineup.unknown(meta)
        ],
        roots=list(meta.roots),
        store=store.describe(),
        size_bytes=_tree_size(path),
        schema_version=meta.schema_version,
        last_run=_last_run(path),
        image_search=SearchAvailability(available=image_reason is None, reason=image_reason),
        query_towers={
            tower.name: _tree_size(tower)
            for tower in sorted((path / QUERY_TOWERS_DIR).glob("*"))
            if (tower / "meta.json").is_file()
        },
        image_encoders=_image_encoders(path / IMAGE_TOWERS_DIR),
    )


def _image_encoders(folder: Path) -> dict[str, dict[str, Any]]:
    from polylens.encoders.onnx_images import read_choice

    out = {}
    for tower in sorted(folder.glob("[!.]*")):
        choice = read_choice(tower)
        if choice is not None:
            keep = ("runtime", "precision", "decided", "torch_ms", "onnx_ms", "min_cosine")
            shown = {k: getattr(choice, k) for k in keep}
            out[tower.name] = shown | {"bytes": _tree_size(tower)}
    return out


def _rep_info(
    rep: Representation,
    meta: IndexMeta,
    store: Store,
    unavailable: dict[str, str],
    index_dir: Path,
) -> RepresentationInfo:
    record = meta.record(rep.name)
    reason = unavailable.get(rep.name)
    if reason is None and record is not None and not record.complete:
        reason = "items indexed before it joined lack its data until the next run"
    return RepresentationInfo(
        name=rep.name,
        title=rep.title,
        kinds=tuple(rep.kinds),
        model=record.name if record is not None and rep.model_key else None,
        resolved=record.resolved if record is not None else None,
        dim=record.dim if record is not None else None,
        available=rep.name not in unavailable,
        reason=reason,
        rows=store.count(rep.collection) if rep.collection else None,
        version=record.version if record is not None else rep.version,
        bytes=rep.footprint(index_dir),
    )


def _model_infos(meta: IndexMeta, reps: list[Representation]) -> list[ModelInfo]:
    infos = []
    for rep in reps:
        record: ModelRecord | None = meta.record(rep.name)
        if record is None or rep.model_key is None:
            continue
        role = rep.model_role_label
        available = rep.holds_data(record)
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


def _tree_size(path: Path) -> int:
    """Bytes under ``path``. ``os.walk`` passes over folders removed while it walks (each
    run swaps the Arrow mirror in, the store compacts), where ``Path.rglob`` raises."""
    return sum(
        _size_of(Path(folder) / name) for folder, _, names in os.walk(path) for name in names
    )


def _size_of(path: Path) -> int:
    """Bytes of a regular file, 0 for anything else or a file removed meanwhile (the store
    compacts and deletes files while a concurrent run writes)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0
