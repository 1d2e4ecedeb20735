"""Give items indexed while a model was unavailable that model's vectors.

An index built offline holds items without image embeddings; once the image model can
be loaded, the next run finds the items that lack vectors and encodes only those,
decoding only what the model reads: pixels for images and pages (no OCR, no text
layer), the stored text for passages. Item rows are not rewritten. Rows are upserts
keyed by item, so a back-fill killed midway resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polylens.config import IndexConfig
from polylens.ingest.encoding import image_space_rows, text_rows
from polylens.ingest.events import ProgressEvents
from polylens.ingest.units import StageClock, Unit, UnitMaker, reason_of
from polylens.store.base import FILES, ITEMS, VEC_IMAGE, VEC_TEXT, Store, chunked

COLLECTION = {"image": VEC_IMAGE, "text": VEC_TEXT}
_PICTURES = ("image", "page")


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
        encoders: dict[str, Any],
        *,
        clock: StageClock,
        events: ProgressEvents,
    ) -> None:
        self.store = store
        self.config = config
        self.encoders = encoders
        self.clock = clock
        self.events = events
        self.problems: list[str] = []
        """Files whose pixels could not be read again (they keep their other vectors)."""

    def run(self, roles: Sequence[str]) -> int:
        """Fill in ``roles``' vectors; returns how many items got vectors."""
        filled = 0
        for role in roles:
            encoder = self.encoders[role]
            self.store.ensure_collection(COLLECTION[role], vector_dim=encoder.dim)
            missing = self._missing(role)
            if not missing:
                continue
            total = sum(len(c.units) for c in missing.values())
            self.events.phase(f"filling in {role} vectors", total=total)
            filled += self._fill(role, missing)
        if filled:
            self.events.phase("optimising indexes")
            self.store.optimize(ann_min_rows=self.config.ann_min_rows)
        return filled

    def _missing(self, role: str) -> dict[str, _Content]:
        """Items of completely indexed contents without vectors of ``role``, by content."""
        files: dict[str, dict[str, Any]] = {}
        for row in self.store.get(FILES):
            files.setdefault(row["content_hash"], row)
        collection = COLLECTION[role]
        have = set(self.store.scan(collection, ["item_id"]).column("item_id").to_pylist())
        columns = ["id", "content_hash", "kind", "page", "chunk", "text"]
        missing: dict[str, _Content] = {}
        for item in self.store.scan(ITEMS, columns).to_pylist():
            file = files.get(item["content_hash"])
            if file is None or item["id"] in have or not self._needs(role, item):
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

    def _needs(self, role: str, item: dict[str, Any]) -> bool:
        has_text = bool((item["text"] or "").strip())
        if role == "text":
            return has_text
        if item["kind"] in _PICTURES:
            return True
        return has_text and self.config.text_in_image_space

    def _fill(self, role: str, missing: dict[str, _Content]) -> int:
        filled = 0
        batch: list[Unit] = []
        for units in self._ready_units(role, missing):
            batch.extend(units)
            if len(batch) >= self.config.commit_every:
                filled += self._write(role, batch)
                batch = []
        if batch:
            filled += self._write(role, batch)
        return filled

    def _write(self, role: str, units: list[Unit]) -> int:
        encoder, config = self.encoders[role], self.config
        rows: list[dict[str, Any]] = []
        for part in chunked(units, config.batch_size):
            if role == "image":
                text_space = config.text_in_image_space
                rows += image_space_rows(
                    encoder, part, text_in_image_space=text_space, clock=self.clock
                )
            else:
                window = config.text_vector_chars
                rows += text_rows(encoder, part, window_chars=window, clock=self.clock)
            self.events.units_encoded(len(part))
        for part in chunked(rows, 4096):
            self.store.upsert(COLLECTION[role], part)
        return len({row["item_id"] for row in rows})

    def _ready_units(self, role: str, missing: dict[str, _Content]) -> Iterator[list[Unit]]:
        """Units ready to encode: text as stored; pictures decoded again on threads, a
        bounded number of contents ahead so memory stays a few batches."""
        needs_pixels = []
        for content in missing.values():
            if role == "image" and content.units[0].kind in _PICTURES:
                needs_pixels.append(content)
            else:
                yield content.units
        if not needs_pixels:
            return
        encoder = self.encoders["image"]
        maker = UnitMaker(
            self.config,
            want_images=True,
            ocr=None,
            clock=self.clock,
            prepare=getattr(encoder, "prepare_image", None),
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
            else:
                wanted = {u.item_id for u in content.units}
                pages = sorted(u.page for u in content.units if u.page)
                span = range(pages[0] - 1, pages[-1])
                decoded = maker.pdf_pages(path, file["content_hash"], span, skip=set())
                decoded = [u for u in decoded if u.item_id in wanted]
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not end the fill
            self.problems.append(f"{path}: could not fill in image vectors: {reason_of(exc)}")
            return []
        by_id = {u.item_id: u for u in content.units}
        for unit in decoded:  # keep the stored text; take only the pixels
            unit.text = by_id[unit.item_id].text
        return decoded
