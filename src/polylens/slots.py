"""The index's models, one per role: loaded once, recorded in ``index.json``, explained.

A role whose model cannot be loaded is not an error: the index goes on without its
vectors, says so in one line, and records why (``polylens status`` shows the full
reason). A role that holds no vectors yet may take another model, and when a model
becomes available the engine back-fills the items indexed without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from polylens import __version__
from polylens.config import IndexConfig
from polylens.encoders.registry import ModelRegistry
from polylens.errors import ConfigError, IndexMismatchError, ModelNotAvailableError
from polylens.meta import IndexMeta, ModelRecord

log = logging.getLogger(__name__)

Role = Literal["image", "text"]
ROLES: tuple[Role, ...] = ("image", "text")
_UNSET = object()
_WHAT = {"image": "image embeddings", "text": "text embeddings"}


def model_warning(role: str, name: str, summary: str, *, indexing: bool) -> str:
    """The one line a run or a search prints about a model it could not load."""
    if indexing:
        return (
            f"{role} model {name} unavailable ({summary}): indexed without {_WHAT[role]}; "
            "a later run that can load it fills them in (`polylens status` says how)"
        )
    return f"{role} model {name} unavailable ({summary}): searching without {_WHAT[role]}"


def check_switch(
    role: Role, record: ModelRecord, requested: str, canonical: str, index_dir: Path
) -> None:
    """Refuse a model other than the one whose vectors the index already holds.

    A role with no vectors yet (its model was unavailable or disabled so far) may switch:
    the run records the new model and fills in the vectors."""
    if canonical == record.resolved or record.name == requested or record.dim is None:
        return
    raise IndexMismatchError(
        f"the index at {index_dir} holds {role} vectors from {record.name!r}, "
        f"but {requested!r} was requested. Vectors from two models cannot be mixed. "
        f"Either drop the flag to keep using {record.name!r}, or build a separate index: "
        f"`polylens index PATHS --index NEW_DIR --{role}-model {requested}`."
    )


class ModelSlots:
    """Encoders by role, each loaded at most once (per slot reset) under one lock, so
    concurrent searches on a server never load a model twice."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._encoders: dict[str, Any] = {role: _UNSET for role in ROLES}
        self.errors: dict[str, ModelNotAvailableError] = {}
        """Roles whose model failed to load in this process, with why."""
        self.warnings: list[str] = []
        self._lock = threading.RLock()

    def loaded(self, role: Role) -> Any:
        """The encoder if it was loaded (or found unavailable), else None."""
        encoder = self._encoders[role]
        return None if encoder is _UNSET else encoder

    def forget(self, role: Role) -> None:
        """Load ``role`` again on next use (the index gained vectors of it meanwhile)."""
        with self._lock:
            if self._encoders[role] is None:
                self._encoders[role] = _UNSET

    def get(self, role: Role, config: IndexConfig, meta: IndexMeta, *, for_search: bool) -> Any:
        encoder = self._encoders[role]
        if encoder is not _UNSET:
            return encoder
        with self._lock:
            if self._encoders[role] is _UNSET:
                self._encoders[role] = self._load(role, config, meta, for_search=for_search)
        return self._encoders[role]

    def _load(self, role: Role, config: IndexConfig, meta: IndexMeta, *, for_search: bool) -> Any:
        record: ModelRecord | None = getattr(meta, f"{role}_model")
        if for_search and (record is None or record.dim is None):
            return None  # no vectors to search: no model to load
        name = getattr(config, f"{role}_model")
        load = self.registry.load_image_text if role == "image" else self.registry.load_text
        try:
            encoder = load(name, device=config.device, batch_size=config.batch_size)
        except ModelNotAvailableError as exc:
            self.errors[role] = exc
            message = model_warning(role, name, exc.summary, indexing=not for_search)
            log.warning(message)
            self.warnings.append(message)
            return None
        if encoder is not None and record is not None and record.dim not in (None, encoder.dim):
            raise ConfigError(
                f"{role} model {encoder.name!r} gives {encoder.dim}-d vectors but the index "
                f"holds {record.dim}-d ones"
            )
        return encoder

    def record(self, meta: IndexMeta, config: IndexConfig, roots: Iterable[str]) -> None:
        """Write into ``meta`` what this run's models are (call after loading them)."""
        for role in ROLES:
            name = getattr(config, f"{role}_model")
            canonical = self.registry.canonical(role, name)
            current: ModelRecord | None = getattr(meta, f"{role}_model")
            if canonical == "none":
                if current is None or current.dim is None:
                    setattr(meta, f"{role}_model", ModelRecord(name, "none", None))
                continue
            if current is not None and current.dim is not None:
                continue  # the role's vectors are fixed to their model
            encoder = self.loaded(role)
            error = self.errors.get(role)
            setattr(
                meta,
                f"{role}_model",
                ModelRecord(
                    name=name,
                    resolved=canonical,
                    dim=encoder.dim if encoder is not None else None,
                    error=str(error) if error and encoder is None else None,
                    error_summary=error.summary if error and encoder is None else None,
                    # Vectors of items indexed before this model was available are
                    # missing until the back-fill has run; a new index has none.
                    complete=encoder is None or current is None,
                ),
            )
        meta.roots = sorted(set(meta.roots) | set(roots))
        meta.polylens_version = __version__

    def incomplete_roles(self, meta: IndexMeta, config: IndexConfig) -> list[Role]:
        """Roles whose items may lack vectors: the model was unavailable (or another one
        is asked for now), or its back-fill has not finished."""
        roles: list[Role] = []
        for role in ROLES:
            record: ModelRecord | None = getattr(meta, f"{role}_model")
            wanted = self.registry.canonical(role, getattr(config, f"{role}_model"))
            if record is not None and wanted != "none":
                if record.dim is None or not record.complete:
                    roles.append(role)
        return roles

    def unavailable_reason(self, role: Role, meta: IndexMeta) -> str | None:
        """Why the index cannot be searched through ``role``'s vectors, or None."""
        record: ModelRecord | None = getattr(meta, f"{role}_model")
        if record is None or record.resolved == "none":
            return f"the index was built without an {role} model (--{role}-model none)"
        if record.dim is None:
            why = record.error_summary or record.error or "could not be loaded"
            return f"the index has no {_WHAT[role]} ({role} model {record.name}: {why})"
        error = self.errors.get(role)
        if error is not None:
            return f"{role} model {record.name} cannot be loaded now ({error.summary})"
        return None
