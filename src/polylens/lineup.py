"""An index's representations: which ones it has, their models, and why one cannot serve.

The set comes from ``index.json`` (or the registry's defaults for a new index), changed by
``with`` / ``without`` settings; each representation is created once per open index (some
keep caches between read models) and its model is loaded lazily through
:class:`~polylens.slots.ModelSlots`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from polylens.config import IndexConfig
from polylens.encoders.registry import DISABLED, ModelRegistry
from polylens.meta import IndexMeta
from polylens.representations.base import Bound, Representation
from polylens.representations.registry import RepresentationRegistry
from polylens.slots import ModelSlots, check_switch

log = logging.getLogger(__name__)


class Lineup:
    def __init__(self, models: ModelRegistry, registry: RepresentationRegistry) -> None:
        self.registry = registry
        self.slots = ModelSlots(models)
        self._instances: dict[str, Representation] = {}

    def get(self, name: str) -> Representation:
        rep = self._instances.get(name)
        if rep is None:
            rep = self._instances[name] = self.registry.create(name)
        return rep

    def registry_reps(self) -> list[Representation]:
        """One of every installed representation."""
        return [self.get(name) for name in self.registry.names]

    def names(self, meta: IndexMeta, config: IndexConfig) -> list[str]:
        recorded = None
        if meta.representations is not None:
            recorded = [n for n in meta.representations if n in self.registry.names]
        return self.registry.choose(recorded, config.with_ + self._implied(config), config.without)

    def _implied(self, config: IndexConfig) -> tuple[str, ...]:
        """Optional representations whose model setting names a model (``page_model =
        "colqwen2"`` adds ``late``), unless ``without`` takes them out."""
        implied = []
        for name in self.registry.names:
            rep = self.get(name)
            if rep.default or rep.model_key is None or name in config.without:
                continue
            if str(getattr(config, rep.model_key, "none")).strip().lower() not in DISABLED:
                implied.append(name)
        return tuple(implied)

    def reps(self, meta: IndexMeta, config: IndexConfig) -> list[Representation]:
        return [self.get(name) for name in self.names(meta, config)]

    def recorded(self, meta: IndexMeta) -> list[Representation]:
        """What the index holds now (a run may be about to add or drop some)."""
        recorded = meta.representations or {}
        return [self.get(n) for n in self.registry.names if n in recorded]

    def unknown(self, meta: IndexMeta) -> list[str]:
        """Recorded representations no installed code provides (a plugin went away)."""
        return [n for n in (meta.representations or {}) if n not in self.registry.names]

    def bound(self, meta: IndexMeta, config: IndexConfig, *, for_search: bool) -> list[Bound]:
        reps = self.recorded(meta) if for_search else self.reps(meta, config)
        return [
            Bound(rep, self.slots.get(rep, config, meta, for_search=for_search)) for rep in reps
        ]

    def unavailable(self, meta: IndexMeta) -> dict[str, str]:
        return {
            rep.name: reason
            for rep in self.recorded(meta)
            if (reason := self.slots.unavailable_reason(rep, meta)) is not None
        }

    def image_query_refusal(self, meta: IndexMeta) -> str | None:
        """Why no representation of the index can answer an image query, or None."""
        takers = [r for r in self.recorded(meta) if r.answers("image")]
        unavailable = self.unavailable(meta)
        if takers and all(rep.name in unavailable for rep in takers):
            return unavailable[takers[0].name]
        return None

    def settle_models(
        self, meta: IndexMeta, config: IndexConfig, explicit: dict[str, Any], index_dir: Path
    ) -> IndexConfig:
        """The index's recorded models become the config's, unless a flag asks for another
        (refused when the index already holds data of the recorded one)."""
        for rep in self.recorded(meta):
            key, record = rep.model_key, meta.record(rep.name)
            if key is None or record is None:
                continue
            if key in explicit:
                requested = explicit[key]
                canonical = rep.canonical(self.slots.registry, requested)
                check_switch(rep, record, requested, canonical, index_dir)
            else:
                config = config.replace(**{key: record.name})
        return config

    def refresh_after_meta_change(self, before: IndexMeta, after: IndexMeta) -> None:
        """Searches ran without a model because the index had no data of it; now it has:
        load it on the next search."""
        for rep in self.recorded(after):
            old, new = before.record(rep.name), after.record(rep.name)
            if (old is None or not rep.holds_data(old)) and new is not None and rep.holds_data(new):
                self.slots.forget(rep)
