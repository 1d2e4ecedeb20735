"""Progress callbacks of an indexing run: a light module, so the CLI can subclass them
without importing the ingest stack."""

from __future__ import annotations


class ProgressEvents:
    """Callbacks the pipeline calls; the CLI renders them, the library never prints.

    A run goes through phases, each announced by :meth:`phase` as it starts: scanning,
    loading each model, reading and encoding (with :meth:`file_done` and
    :meth:`units_encoded` per file and batch), writing, filling in vectors of a model that
    became available, optimising indexes."""

    def phase(self, what: str, total: int | None = None) -> None:
        """A new phase begins; ``total`` counts its steps when known."""

    def scanning(self, files_seen: int) -> None: ...

    def planned(self, files_to_encode: int) -> None: ...

    def file_done(self, path: str, items: int) -> None: ...

    def units_encoded(self, count: int) -> None: ...

    def file_failed(self, path: str, reason: str) -> None: ...
