"""A query image as the searcher takes it: decoded (every error names the file), and the
content hash its file would have in the index, so an indexed exact copy is recognised."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from polylens.config import IndexConfig
from polylens.ingest.images import read_query_image
from polylens.ingest.sources import content_hash


def query_image(image: str | os.PathLike[str] | bytes | Any, config: IndexConfig) -> Any:
    """A PIL image from a path or bytes (a PIL image is taken as it is)."""
    if not isinstance(image, (str, os.PathLike, bytes)):
        return image
    return read_query_image(
        image, max_pixels=config.max_image_pixels, max_side=config.max_image_side
    )


def query_digest(image: Any) -> str | None:
    """None for a picture given as a PIL image: its file's bytes are unknown."""
    if isinstance(image, bytes):
        return hashlib.blake2b(image, digest_size=16).hexdigest()
    if isinstance(image, (str, os.PathLike)):
        return content_hash(os.fspath(image))[0]
    return None
