"""Units to vector rows: the *encode* stage, shared by a normal run and a back-fill."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from polylens.encoders.base import ImageTextEncoder, TextEncoder
from polylens.ingest.text import windows
from polylens.ingest.units import StageClock, Unit


def vector_row(row_id: str, unit: Unit, vector: Any) -> dict[str, Any]:
    return {
        "id": row_id,
        "item_id": unit.item_id,
        "content_hash": unit.content_hash,
        "kind": unit.kind,
        "vector": vector,
    }


def image_space_rows(
    encoder: ImageTextEncoder,
    units: Sequence[Unit],
    *,
    text_in_image_space: bool,
    clock: StageClock,
) -> list[dict[str, Any]]:
    """One image-space vector per picture (image, page) and, if asked, per passage."""
    rows: list[dict[str, Any]] = []
    pictures = [u for u in units if u.image is not None]
    passages = (
        [u for u in units if u.kind == "text" and u.text.strip()] if text_in_image_space else []
    )
    for group, embed in (
        (pictures, lambda us: encoder.embed_images([u.image for u in us])),
        (passages, lambda us: encoder.embed_queries([u.text for u in us])),
    ):
        if not group:
            continue
        started = time.perf_counter()
        vectors = embed(group)
        clock.add("encode_image", started)
        rows.extend(vector_row(u.item_id, u, v) for u, v in zip(group, vectors, strict=True))
    return rows


def text_rows(
    encoder: TextEncoder, units: Sequence[Unit], *, window_chars: int, clock: StageClock
) -> list[dict[str, Any]]:
    """Text-embedder vectors: one per window of each unit's text (long texts get several)."""
    texts = [
        (unit, n, window)
        for unit in units
        for n, window in enumerate(windows(unit.text, window_chars))
    ]
    if not texts:
        return []
    started = time.perf_counter()
    vectors = encoder.embed_documents([t for _, _, t in texts])
    clock.add("encode_text", started)
    return [
        vector_row(f"{unit.item_id}#w{n}", unit, vector)
        for (unit, n, _), vector in zip(texts, vectors, strict=True)
    ]
