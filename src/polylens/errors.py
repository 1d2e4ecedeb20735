"""The one exception tree polylens raises.

Library code raises these and never prints or exits; the CLI maps them to exit codes
(``exit_code``) and a server can map them to HTTP statuses (``http_status``).
"""

from __future__ import annotations


class PolylensError(Exception):
    """Base of every error polylens raises on purpose."""

    exit_code: int = 1
    http_status: int = 500


class ConfigError(PolylensError):
    """A setting, flag or config file value is invalid."""

    exit_code = 2
    http_status = 400


class MissingExtraError(PolylensError):
    """An optional dependency is needed for a feature the user asked for."""

    exit_code = 2
    http_status = 501


class ModelError(PolylensError):
    """A model could not be loaded or run."""


class ModelNotAvailableError(ModelError):
    """A model's weights cannot be found locally and cannot be downloaded.

    ``summary`` is a short reason for one-line reports and narrow tables; the message
    itself says in full how to bring the model over."""

    exit_code = 3
    http_status = 503

    def __init__(self, message: str, *, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message


class IndexError_(PolylensError):
    """Base of errors about the index directory itself."""


class IndexNotFoundError(IndexError_):
    """The index directory holds no polylens index."""

    exit_code = 2
    http_status = 404


class IndexMismatchError(IndexError_):
    """The index was built with other models or an unknown schema version."""

    exit_code = 2
    http_status = 409


class IndexLockedError(IndexError_):
    """Another process is writing to the index."""

    exit_code = 4
    http_status = 423


class ItemNotFoundError(PolylensError):
    """No indexed item has this id (or its file is gone)."""

    exit_code = 2
    http_status = 404


class StoreError(PolylensError):
    """The storage engine failed (disk full, read-only directory, corrupt data)."""


class InputError(PolylensError):
    """A file or query cannot be used. Ingestion reports these per file and goes on."""

    exit_code = 2
    http_status = 400


class UnsupportedFileError(InputError):
    """The file's content is not a type polylens indexes."""

    http_status = 415


class CorruptFileError(InputError):
    """The file claims a supported type but cannot be decoded safely."""

    http_status = 422


__all__ = [
    "ConfigError",
    "CorruptFileError",
    "IndexError_",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InputError",
    "ItemNotFoundError",
    "MissingExtraError",
    "ModelError",
    "ModelNotAvailableError",
    "PolylensError",
    "StoreError",
    "UnsupportedFileError",
]
