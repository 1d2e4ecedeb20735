"""One indexing run over an open index: drop the representations asked away, ingest, fill
in what representations that joined (or models that became available) lack, refresh the
files derived from the store, and record how the index is now built."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polylens.config import IndexConfig
from polylens.encoders.ocr import RapidOcr
from polylens.errors import PolylensError
from polylens.ingest.backfill import BackFill
from polylens.ingest.events import ProgressEvents
from polylens.ingest.pipeline import Ingestor, Models
from polylens.lineup import Lineup
from polylens.meta import LAST_RUN_FILE, IndexMeta, write_json_atomic, write_meta
from polylens.representations.ann import AnnSettings
from polylens.representations.base import Bound, Representation, picture_side
from polylens.search.snapshot import refresh_derived
from polylens.store.base import Store
from polylens.types import RunSummary


@dataclass
class IndexWriter:
    index_dir: Path
    store: Store
    config: IndexConfig
    meta: IndexMeta
    lineup: Lineup
    ann: AnnSettings
    get_ocr: Callable[[], RapidOcr]
    events: ProgressEvents

    def run(self, roots: Sequence[str], *, rehash: bool) -> RunSummary:
        reps = self.lineup.reps(self.meta, self.config)
        names = {rep.name for rep in reps}
        dropped = [r for r in self.lineup.recorded(self.meta) if r.name not in names]
        if dropped and self.meta.representations is not None:
            # Recorded as gone before its data goes: a run killed in between leaves an
            # index that no longer counts on that data (a later --with fills it in again).
            for rep in dropped:
                self.meta.representations.pop(rep.name, None)
            write_meta(self.index_dir, self.meta)
        for rep in dropped:
            rep.drop(self.store, self.index_dir)
            self.lineup.slots.drop_query_tower(rep)
        loaded: list[Models] = []

        def load_models() -> Models:
            if not loaded:
                loaded.append(self._load(reps, roots))
            return loaded[0]

        ingestor = Ingestor(
            self.store,
            self.config,
            load_models=load_models,
            collections=[r.collection for r in reps if r.collection],
            exclude=[str(self.index_dir)],
            events=self.events,
            rehash=rehash,
        )
        summary = ingestor.run(roots)
        self._back_fill(reps, load_models, ingestor)
        refresh_derived(self.store, self.index_dir, self.ann, reps)
        # Also when no model loaded: a representation dropped or switched to `none` is
        # recorded, and the roots.
        self.lineup.slots.record(self.meta, self.config, reps, roots)
        write_meta(self.index_dir, self.meta)
        summary.warnings.extend(self.lineup.slots.warnings)
        summary.warnings.extend(
            f"representation {name} is recorded in this index but not installed: "
            "its data is neither updated nor searched"
            for name in self.lineup.unknown(self.meta)
        )
        write_json_atomic(self.index_dir / LAST_RUN_FILE, summary.to_dict())
        return summary

    def _load(self, reps: list[Representation], roots: Sequence[str]) -> Models:
        """Load this run's models (each shown as a phase) and record them."""
        bound: list[Bound] = []
        slots = self.lineup.slots
        for rep in reps:
            name = rep.model_name(self.config)
            if name is not None and rep.canonical(slots.registry, name) != "none":
                self.events.phase(f"loading {rep.model_role_label} model {name}")
            model = slots.get(rep, self.config, self.meta, for_search=False)
            record = self.meta.record(rep.name)
            if model is None and record is not None and rep.holds_data(record):
                slots.warnings.append(
                    f"this index has {rep.title} but the {rep.model_role_label} model is "
                    f"unavailable now: files added in this run will not have them"
                )
            if model is not None:
                bound.append(Bound(rep, model))
                for caveat in rep.caveats(self.config):
                    if caveat not in slots.warnings:  # a server runs many times
                        slots.warnings.append(caveat)
        if self.config.query_towers:
            slots.export_query_towers(bound, self.config, announce=self.events.phase)
        slots.prepare_image_runtimes(bound, self.config, announce=self.events.phase)
        ocr = None
        if self.config.ocr:
            self.events.phase("loading OCR")
            ocr = self.get_ocr()
        speech = self._speech()
        slots.record(self.meta, self.config, reps, roots)
        write_meta(self.index_dir, self.meta)
        return bound, ocr, speech

    def _speech(self) -> Any:
        """The speech recogniser for videos' sound track, if one is configured; one that
        cannot load leaves videos without transcripts, said once in the run's warnings."""
        name = self.config.speech_model
        registry = self.lineup.slots.registry
        try:
            if registry.parse("speech", name) is None:  # none / off
                return None
            self.events.phase(f"loading speech model {name}")
            return registry.load_speech(name, device=self.config.device)
        except PolylensError as exc:
            self.lineup.slots.warnings.append(
                f"speech model {name} is unavailable, videos are indexed without transcripts: {exc}"
            )
            return None

    def _back_fill(
        self, reps: list[Representation], load_models: Callable[[], Models], ingestor: Ingestor
    ) -> None:
        """Give items indexed before a representation joined (or its model loaded) its data."""
        if not self.lineup.slots.incomplete(self.meta, self.config, reps):
            return
        bound, _, _ = load_models()  # no-op when already loaded
        wanted = {r.name for r in self.lineup.slots.incomplete(self.meta, self.config, reps)}
        todo = [b for b in bound if b.name in wanted]
        if not todo:
            return
        backfill = BackFill(
            self.store,
            self.config,
            clock=ingestor.clock,
            events=self.events,
            side=picture_side(bound),
        )
        ingestor.summary.items_backfilled += backfill.run(todo)
        ingestor.summary.warnings.extend(backfill.problems)
        for one in todo:
            record = self.meta.record(one.name)
            if record is not None:
                record.complete = True
        write_meta(self.index_dir, self.meta)
