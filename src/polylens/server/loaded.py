"""Helpers the routes share with the app factory: the index with its query encoders
loaded once, and pictures as JPEG/PNG bytes. Kept apart from ``app`` so that the routes
import no module that imports them back."""

from __future__ import annotations

import io
from typing import Any


def searchable_index(state: Any) -> Any:
    """The app's index with its query encoders loaded, loaded once.

    The engine loads models lazily and without a lock; handlers run in a thread pool, so
    concurrent first searches would each load every model (twice the memory and time, and
    loaders that are not thread-safe). One lock per app makes the first search load them
    while the others wait; after that this is one attribute read."""
    if not state.models_ready:
        with state.models_lock:
            if not state.models_ready:
                state.index.load_models()
                state.models_ready = True
    return state.index


def encode_image(image: Any, fmt: str = "JPEG", quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, quality=quality)
    return buf.getvalue()
