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


class StoreUnavailableError(StoreError):
    """A store server (Qdrant) is down, too slow, busy elsewhere or refused the API key.
    Nothing committed is lost; the run can be repeated once it answers."""

    exit_code = 6
    http_status = 503


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


class EndpointError(PolylensError):
    """The model endpoint ``ask`` talks to failed: down, too slow, refused the request,
    or sent something that is not an OpenAI-compatible reply. Messages never hold the
    API key."""

    exit_code = 5
    http_status = 502


class EndpointNotConfiguredError(ConfigError):
    """``ask`` needs a model endpoint and none is set."""

    http_status = 503  # to an HTTP client, the server is not set up for it


class EndpointUnreachableError(EndpointError):
    """Nothing answers at the endpoint's address."""


class EndpointTimeoutError(EndpointError):
    """The endpoint did not answer, or stopped sending, within the timeout."""

    http_status = 504


class EndpointRejectedError(EndpointError):
    """The endpoint answered with an HTTP error status (``status``)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class EndpointProtocolError(EndpointError):
    """The endpoint's reply or stream was malformed or cut off."""


__all__ = [
    "ConfigError",
    "CorruptFileError",
    "EndpointError",
    "EndpointNotConfiguredError",
    "EndpointProtocolError",
    "EndpointRejectedError",
    "EndpointTimeoutError",
    "EndpointUnreachableError",
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
