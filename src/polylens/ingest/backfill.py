"""Give the items already indexed the data of a representation they lack.

Two cases, one mechanism: a representation added to an existing index (``--with NAME``),
and a model that was unavailable when the items were indexed (an index built offline
holds items without image embeddings until the image model can be loaded). The run finds
the items that lack the representation's rows and encodes only those, decoding only what
it reads: pixels for images and pages (no OCR, no text layer), the stored text otherwise.
Item rows are not rewritten, nothing else is re-encoded. Rows are upserts keyed by item,
so a back-fill killed midway resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polylens.config import IndexConfig
from polylens.ingest.events import ProgressEvents
from polylens.ingest.units import StageClock, Unit, UnitMaker, reason_of
from polylens.representations.base import PICTURE_KINDS, Bound, pixel_preparers
from polylens.store.base import FILES, ITEMS, Store, chunked


@dataclass
class _Content:
    """The items of one content that lack vectors, and a file that holds it."""

    file: dict[str, Any]
    units: list[Unit] = field(default_factory=list)


class BackFill:
    def __init__(
        self,
        store: Store,
        config: IndexConfig,
        *,
        clock: StageClock,
        events: ProgressEvents,
        side: int | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.side = side
        """Short side pictures are decoded at: the run's, over all its representations, so
        a back-filled vector is the one a run computes for the same picture."""
        self.clock = clock
        self.events = events
        self.problems: list[str] = []
        """Files whose pixels could not be read again (they keep their other vectors)."""

    def run(self, bound: Sequence[Bound]) -> int:
        """Fill in each representation's rows; returns how many items got some."""
        filled = 0
        for one in bound:
            if one.rep.collection is None:
                continue  # it reads the items' own columns: nothing to fill in
            one.rep.ensure_storage(self.store, one.model)
            missing = self._missing(one)
            if not missing:
                continue
            total = sum(len(c.units) for c in missing.values())
            self.events.phase(
                f"filling in {one.rep.stored_as or one.rep.name + ' data'}", total=total
            )
            filled += self._fill(one, missing)
        if filled:
            self.events.phase("optimising indexes")
            self.store.optimize(ann_min_rows=self.config.ann_min_rows)
        return filled

    def _missing(self, one: Bound) -> dict[str, _Content]:
        """Items of completely indexed contents without rows of ``one``, by content."""
        files: dict[str, dict[str, Any]] = {}
        for row in self.store.get(FILES):
            files.setdefault(row["content_hash"], row)
        collection = one.rep.collection
        assert collection is not None
        have = set(self.store.scan(collection, ["item_id"]).column("item_id").to_pylist())
        columns = ["id", "content_hash", "kind", "page", "chunk", "text"]
        missing: dict[str, _Content] = {}
        for item in self.store.scan(ITEMS, columns).to_pylist():
            file = files.get(item["content_hash"])
            item["text"] = item["text"] or ""
            if file is None or item["id"] in have or not one.rep.wants(item, self.config):
                continue
            content = missing.setdefault(item["content_hash"], _Content(file))
            content.units.append(
                Unit(
                    item["id"],
                    item["content_hash"],
                    item["kind"],
                    page=item["page"],
                    chunk=item["chunk"],
                    text=item["text"] or "",
                )
            )
        return missing

    def _fill(self, one: Bound, missing: dict[str, _Content]) -> int:
        filled = 0
        batch: list[Unit] = []
        for units in self._ready_units(one, missing):
            batch.extend(units)
            if len(batch) >= self.config.commit_every:
                filled += self._write(one, batch)
                batch = []
        if batch:
            filled += self._write(one, batch)
        return filled

    def _write(self, one: Bound, units: list[Unit]) -> int:
        rows: list[dict[str, Any]] = []
        for part in chunked(units, self.config.batch_size):
            rows += one.rep.encode(one.model, part, self.config, self.clock)
            self.events.units_encoded(len(part))
        assert one.rep.collection is not None
        for part in chunked(rows, 4096):
            self.store.upsert(one.rep.collection, part)
        return len({row["item_id"] for row in rows})

    def _ready_units(self, one: Bound, missing: dict[str, _Content]) -> Iterator[list[Unit]]:
        """Units ready to encode: text as stored; pictures decoded again on threads, a
        bounded number of contents ahead so memory stays a few batches."""
        needs_pixels = []
        for content in missing.values():
            if one.rep.needs.pixels and content.units[0].kind in PICTURE_KINDS:
                needs_pixels.append(content)
            else:
                yield content.units
        if not needs_pixels:
            return
        maker = UnitMaker(
            self.config,
            ocr=None,
            clock=self.clock,
            prepare=pixel_preparers([one]),
            picture_side=self.side,
            video_reps=[one.name] if "video" in one.rep.kinds else [],
        )
        ahead = max(2, self.config.batch_size)
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            for group in chunked(needs_pixels, ahead):
                yield from pool.map(lambda c: self._pixels(c, maker), group)

    def _pixels(self, content: _Content, maker: UnitMaker) -> list[Unit]:
        file = content.file
        path = file["path"]
        try:
            st = os.stat(path)
            if st.st_size != file["size"] or st.st_mtime_ns != file["mtime_ns"]:
                return []  # changed since it was indexed: the next run re-indexes it whole
            if file["file_kind"] == "image":
                decoded = maker.image(path, file["content_hash"])
            elif file["file_kind"] == "video":
                # the same rules cut the same segments: their ids match the stored ones
                wanted = {u.item_id for u in content.units}
                info, rules, windows = maker.video_windows(path)
                decoded = [
                    unit
                    for window in windows
                    for unit in maker.video(path, file["content_hash"], info, rules, window)
                    if unit.item_id in wanted
                ]
            else:
                wanted = {u.item_id for u in content.units}
                pages = sorted(u.page for u in content.units if u.page)
                span = range(pages[0] - 1, pages[-1])
                decoded = maker.pdf_pages(path, file["content_hash"], span, skip=set())
                decoded = [u for u in decoded if u.item_id in wanted]
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not end the fill
            self.problems.append(f"{path}: could not fill in its pixels' data: {reason_of(exc)}")
            return []
        by_id = {u.item_id: u for u in content.units}
        for unit in decoded:  # keep the stored text; take only the pixels
            unit.text = by_id[unit.item_id].text
        return decoded
