"""One indexed item: its row and files, and its picture read back from a file the index
holds (only under the folders it was built from: no symlink escapes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from polylens.config import IndexConfig
from polylens.errors import ItemNotFoundError
from polylens.ingest.sources import under_any
from polylens.store.base import FILES, ITEMS, Filter, Store
from polylens.types import ItemInfo


def read_item(store: Store, item_id: str) -> ItemInfo:
    """An indexed item with its text and every path that holds its content."""
    rows = store.get(ITEMS, Filter(ids=(item_id,)))
    if not rows:
        raise ItemNotFoundError(f"no item {item_id!r} in this index")
    row = rows[0]
    files = store.get(FILES, Filter(content_hashes=(row["content_hash"],)))
    if not files:
        raise ItemNotFoundError(f"item {item_id!r} belongs to no indexed file")
    paths = sorted(f["path"] for f in files)
    return ItemInfo(
        id=row["id"],
        kind=row["kind"],
        page=row["page"],
        chunk=row["chunk"],
        path=paths[0],
        other_paths=tuple(paths[1:]),
        text=row["text"],
        text_source=row["text_source"],
        width=row["width"],
        height=row["height"],
        content_hash=row["content_hash"],
        file_kind=files[0]["file_kind"],
        start=row.get("start"),
        end=row.get("end"),
    )


def safe_path(info: ItemInfo, roots: Sequence[str]) -> str:
    """The real path of a file holding the item that still lies under an indexed root."""
    real_roots = [os.path.realpath(r) for r in roots]
    for candidate in (info.path, *info.other_paths):
        real = os.path.realpath(candidate)
        if os.path.isfile(real) and under_any(real, real_roots):
            return real
    raise ItemNotFoundError(
        f"the file of item {info.id!r} is gone or lies outside the indexed folders"
    )


def item_picture(
    info: ItemInfo, roots: Sequence[str], config: IndexConfig, *, max_side: int | None
) -> Any:
    """The picture of an image or page item, or a video segment's middle keyframe (PIL)."""
    if info.kind == "text":
        raise ItemNotFoundError(f"item {info.id!r} is text; it has no image")
    path = safe_path(info, roots)
    side = max_side or config.max_image_side
    if info.kind == "image":
        from polylens.ingest.images import load_image

        return load_image(path, max_pixels=config.max_image_pixels, max_side=side)
    if info.kind == "video":
        from polylens.ingest.video import frame_at, keyframe_time

        return frame_at(path, keyframe_time(info.start or 0.0, info.end), max_side=side)
    from polylens.ingest.pdf import PdfFile

    with PdfFile(path, max_pages=config.max_pdf_pages) as pdf:
        return pdf.render((info.page or 1) - 1, dpi=config.pdf_ocr_dpi, max_side=side)
