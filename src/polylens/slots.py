"""The index's models, one per representation that has one: loaded once, recorded in
``index.json``, explained.

A representation whose model cannot be loaded is not an error: the index goes on without
its data, says so in one line, and records why (``polylens status`` shows the full reason).
One that holds no data yet may take another model, and when a model becomes available the
engine back-fills the items indexed without it.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from polylens import __version__
from polylens.config import IndexConfig
from polylens.encoders.registry import ModelRegistry
from polylens.errors import ConfigError, IndexMismatchError, ModelNotAvailableError
from polylens.meta import IndexMeta, ModelRecord
from polylens.representations.base import Representation

log = logging.getLogger(__name__)

_UNSET = object()


def model_warning(rep: Representation, name: str, summary: str, *, indexing: bool) -> str:
    """The one line a run or a search prints about a model it could not load."""
    role = rep.model_role_label
    if indexing:
        return (
            f"{role} model {name} unavailable ({summary}): indexed without {rep.title}; "
            "a later run that can load it fills them in (`polylens status` says how)"
        )
    return f"{role} model {name} unavailable ({summary}): searching without {rep.title}"


def check_switch(
    rep: Representation, record: ModelRecord, requested: str, canonical: str, index_dir: Path
) -> None:
    """Refuse a model other than the one whose vectors the index already holds.

    A representation with no data yet (its model was unavailable or disabled so far) may
    switch: the run records the new model and fills in the data."""
    if canonical == record.resolved or record.name == requested or not rep.holds_data(record):
        return
    role = rep.model_role_label
    raise IndexMismatchError(
        f"the index at {index_dir} holds {role} vectors from {record.name!r}, "
        f"but {requested!r} was requested. Vectors from two models cannot be mixed. "
        f"Either drop the flag to keep using {record.name!r}, or build a separate index: "
        f"`polylens index PATHS --index NEW_DIR --{role}-model {requested}`."
    )


class ModelSlots:
    """Models by representation name, each loaded at most once (per slot reset) under one
    lock, so concurrent searches on a server never load a model twice."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._models: dict[str, Any] = {}
        self.errors: dict[str, ModelNotAvailableError] = {}
        """Representations whose model failed to load in this process, with why."""
        self.warnings: list[str] = []
        self.query_dir: Path | None = None
        """Where query towers exported to ONNX live (``encoders.onnx_queries``); None: none."""
        self.image_dir: Path | None = None
        """Where image towers exported to ONNX live (``encoders.onnx_images``); None: none."""
        self._lock = threading.RLock()

    def loaded(self, rep: Representation) -> Any:
        """The model if it was loaded (or found unavailable), else None."""
        model = self._models.get(rep.name, _UNSET)
        return None if model is _UNSET else model

    def forget(self, rep: Representation) -> None:
        """Load the model again on next use (the index gained data of it meanwhile)."""
        with self._lock:
            if self._models.get(rep.name, _UNSET) is None:
                del self._models[rep.name]

    def get(
        self, rep: Representation, config: IndexConfig, meta: IndexMeta, *, for_search: bool
    ) -> Any:
        """The representation's model; None when it has none, is disabled or unavailable.
        Representations without a model get ``True`` (ready)."""
        if rep.model_key is None:
            return True
        model = self._models.get(rep.name, _UNSET)
        if model is not _UNSET:
            return model
        with self._lock:
            if self._models.get(rep.name, _UNSET) is _UNSET:
                self._models[rep.name] = self._load(rep, config, meta, for_search=for_search)
        return self._models[rep.name]

    def _load(
        self, rep: Representation, config: IndexConfig, meta: IndexMeta, *, for_search: bool
    ) -> Any:
        record = meta.record(rep.name)
        if for_search and (record is None or not rep.holds_data(record)):
            return None  # no vectors to search: no model to load
        name = rep.model_name(config) or ""
        if for_search and record is not None:
            front = self._query_front(rep, record, lambda: rep.load_model(self.registry, config))
            if front is not None:
                return front
        try:
            model = rep.load_model(self.registry, config)
        except ModelNotAvailableError as exc:
            self.errors[rep.name] = exc
            message = model_warning(rep, name, exc.summary, indexing=not for_search)
            log.warning(message)
            self.warnings.append(message)
            return None
        if model is not None and record is not None and record.dim not in (None, model.dim):
            raise ConfigError(
                f"{rep.model_role_label} model {model.name!r} gives {model.dim}-d vectors but "
                f"the index holds {record.dim}-d ones"
            )
        return model

    def _query_front(self, rep: Representation, record: ModelRecord, load: Any) -> Any:
        """The exported query tower of ``rep``'s model, if one matches the index's record:
        queries without torch; the full model is loaded only for anything else."""
        if self.query_dir is None:
            return None
        from polylens.encoders.onnx_queries import OnnxQueryEncoder, read_meta

        directory = self.query_dir / rep.name
        meta = read_meta(directory)
        if meta is None or meta.model != record.resolved or meta.dim != record.dim:
            return None
        return OnnxQueryEncoder(directory, meta, load)

    def drop_query_tower(self, rep: Representation) -> None:
        """Remove the exported query tower of a representation the index drops."""
        if self.query_dir is not None:
            shutil.rmtree(self.query_dir / rep.name, ignore_errors=True)

    def export_query_towers(
        self, bound: Sequence[Any], config: IndexConfig, announce: Any = None
    ) -> None:
        """After a run loaded its models: export the query towers not exported yet
        (``announce`` is told each one, as a phase of the run)."""
        if self.query_dir is None:
            return
        from polylens.encoders.onnx_queries import OnnxQueryEncoder, export, read_meta

        for item in bound:
            model = item.model
            if isinstance(model, OnnxQueryEncoder) or not hasattr(type(model), "query_tower"):
                continue
            canonical = item.rep.canonical(self.registry, item.rep.model_name(config) or "none")
            meta = read_meta(self.query_dir / item.rep.name)
            if meta is not None and meta.model == canonical and meta.dim == model.dim:
                continue
            if announce is not None:
                announce(f"exporting the {item.rep.model_role_label} model's query encoder")
            export(model, self.query_dir / item.rep.name, canonical)

    def prepare_image_runtimes(
        self, bound: Sequence[Any], config: IndexConfig, announce: Any = None
    ) -> None:
        """Before a run embeds images: run each image model's tower in ONNX Runtime where
        ``encoder_runtime`` and this machine say so (``encoders.onnx_images``)."""
        if self.image_dir is None:
            return
        from polylens.encoders.onnx_images import prepare

        done: set[int] = set()
        for item in bound:
            model = item.model
            if not hasattr(model, "use_image_runner") or id(model) in done:
                continue
            done.add(id(model))  # one model may serve several representations
            canonical = item.rep.canonical(self.registry, item.rep.model_name(config) or "none")
            runner = prepare(
                model,
                self.image_dir / item.rep.name,
                canonical,
                runtime=config.encoder_runtime,
                precision=config.precision,
                announce=announce,
            )
            model.use_image_runner(runner)

    def record(
        self,
        meta: IndexMeta,
        config: IndexConfig,
        reps: Sequence[Representation],
        roots: Iterable[str],
    ) -> None:
        """Write into ``meta`` what this run's representations are (after loading them).
        Representations not in ``reps`` leave the record."""
        # Data of items indexed before a representation joined (or its model loaded) is
        # missing until the back-fill has run; an index recorded for the first time has
        # no such items.
        had_items = meta.representations is not None
        records: dict[str, ModelRecord] = {}
        for rep in reps:
            current = meta.record(rep.name)
            if rep.model_key is None:
                records[rep.name] = current or ModelRecord(
                    rep.name, rep.algorithm, None, version=rep.version, complete=not had_items
                )
                continue
            name = rep.model_name(config) or "none"
            canonical = rep.canonical(self.registry, name)
            if canonical == "none":
                keep = current is not None and rep.holds_data(current)
                records[rep.name] = current if keep else ModelRecord(name, "none", None)
                continue
            if current is not None and rep.holds_data(current):
                records[rep.name] = current  # its vectors are fixed to their model
                continue
            model = self.loaded(rep)
            error = self.errors.get(rep.name)
            records[rep.name] = ModelRecord(
                name=name,
                resolved=canonical,
                dim=model.dim if model is not None else None,
                error=str(error) if error and model is None else None,
                error_summary=error.summary if error and model is None else None,
                complete=model is None or not had_items,
                version=rep.version,
            )
        meta.representations = records
        meta.roots = sorted(set(meta.roots) | set(roots))
        meta.polylens_version = __version__

    def incomplete(
        self, meta: IndexMeta, config: IndexConfig, reps: Sequence[Representation]
    ) -> list[Representation]:
        """Representations whose items may lack data: the model was unavailable (or
        another one is asked for now), it joined an existing index, or its back-fill has
        not finished."""
        out = []
        for rep in reps:
            if rep.model_key is not None:
                wanted = rep.canonical(self.registry, rep.model_name(config) or "none")
                if wanted == "none":
                    continue
            record = meta.record(rep.name)
            if record is None:
                if meta.representations is not None:
                    out.append(rep)  # joins an index that already holds items
                continue
            if not rep.holds_data(record) or not record.complete:
                out.append(rep)
        return out

    def unavailable_reason(self, rep: Representation, meta: IndexMeta) -> str | None:
        """Why the index cannot be searched through ``rep``, or None."""
        record = meta.record(rep.name)
        role = rep.model_role_label
        if record is None:
            return f"the index was built without {rep.title} (--without {rep.name})"
        if record.resolved == "none":
            return f"the index was built without an {role} model (--{role}-model none)"
        if not rep.holds_data(record):
            why = record.error_summary or record.error or "could not be loaded"
            return f"the index has no {rep.title} ({role} model {record.name}: {why})"
        error = self.errors.get(rep.name)
        if error is not None:
            return f"{role} model {record.name} cannot be loaded now ({error.summary})"
        return None
