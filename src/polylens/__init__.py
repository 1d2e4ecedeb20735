"""polylens: multimodal search over your own photos, PDFs, scans and text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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

if TYPE_CHECKING:
    from polylens.engine import Index, open_index

    open = open_index  # noqa: A001


def __getattr__(name: str) -> Any:
    """The engine (LanceDB, pyarrow, the search stack) loads on first use, so importing
    polylens, or running `polylens --help`, stays fast."""
    if name in ("Index", "open_index", "open"):
        from polylens import engine

        value = engine.open_index if name in ("open", "open_index") else engine.Index
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polylens' has no attribute {name!r}")


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
