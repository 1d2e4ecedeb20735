"""Evidence pictures within a pixel and byte budget: the token cost of a request is
mostly its images, and endpoints refuse bodies past a size (HTTP 413)."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

QUALITIES = (85, 70, 55)
MIN_SIDE = 96
"""A picture that would have to shrink below this is sent as text only."""


def fit_jpeg(picture: Any, *, max_pixels: int, max_bytes: int) -> bytes | None:
    """The picture as JPEG of at most ``max_pixels`` pixels and ``max_bytes`` bytes:
    lower quality first, then smaller; None when it cannot fit legibly."""
    image = picture.convert("RGB")
    scale = min(1.0, math.sqrt(max_pixels / max(1, image.width * image.height)))
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if min(size) < MIN_SIDE and scale < 1.0:
            return None
        resized = image if size == image.size else image.resize(size)
        for quality in QUALITIES:
            buffer = io.BytesIO()
            resized.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        scale *= 0.7


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
