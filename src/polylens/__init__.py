"""polylens: multimodal search over your own photos, PDFs, scans and text."""

from __future__ import annotations

__version__ = "0.1.0"

from polylens.engine import Index, open_index  # noqa: E402
from polylens.errors import (  # noqa: E402
    ConfigError,
    CorruptFileError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    InputError,
    MissingExtraError,
    ModelError,
    ModelNotAvailableError,
    PolylensError,
    StoreError,
    UnsupportedFileError,
)
from polylens.types import FileFailure, Hit, IndexStatus, RunSummary  # noqa: E402

open = open_index  # noqa: A001 - `polylens.open(path)` is the documented entry point

__all__ = [
    "ConfigError",
    "CorruptFileError",
    "FileFailure",
    "Hit",
    "Index",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStatus",
    "InputError",
    "MissingExtraError",
    "ModelError",
    "ModelNotAvailableError",
    "PolylensError",
    "RunSummary",
    "StoreError",
    "UnsupportedFileError",
    "__version__",
    "open",
]
