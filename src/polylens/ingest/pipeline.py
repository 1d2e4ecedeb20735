"""Incremental, resumable ingestion: plan -> decode (threads) -> encode -> write.

Consistency rules, which the crash tests check:

* Items are keyed by content hash, files by path. A file row is written only after
  every item of its content is committed, so "a files row references hash H" means
  "H is completely indexed". Moved or copied files therefore only get a new file row.
* Writes go vectors -> items -> files, each an atomic store commit. A crash leaves at
  most some items of unfinished content; the next run skips the items it already has
  and finishes the rest (ids are deterministic, writes are upserts: no duplicates).
* At the end, file rows of vanished paths are deleted and items, vectors of content no
  file references any more are collected.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from polylens.config import IndexConfig
from polylens.encoders.ocr import RapidOcr
from polylens.errors import InputError, PolylensError
from polylens.ingest.cleanup import collect_garbage, stale_paths
from polylens.ingest.events import ProgressEvents
from polylens.ingest.sidecars import combined_hash, video_of_sidecar, with_sidecars
from polylens.ingest.sniff import sniff
from polylens.ingest.sources import (
    FoundFile,
    WalkProblem,
    content_hash,
    has_media_extension,
    walk,
)
from polylens.ingest.tasks import Piece, Plan, Task, file_row, yield_to_the_encoder
from polylens.ingest.units import StageClock, Unit, UnitMaker, reason_of
from polylens.representations.base import Bound, picture_side, pixel_preparers
from polylens.store.base import FILES, ITEMS, Filter, Store, chunked
from polylens.types import FileFailure, RunSummary

log = logging.getLogger(__name__)

PDF_PAGES_PER_PIECE = 8

Models = tuple[list[Bound], RapidOcr | None, Any]
"""The representations this run can write (model loaded), OCR if on, and a speech
recogniser (:class:`polylens.encoders.speech.SpeechRecognizer`) if one is configured."""


class Ingestor:
    def __init__(
        self,
        store: Store,
        config: IndexConfig,
        *,
        load_models: Callable[[], Models],
        collections: Sequence[str] = (),
        exclude: Sequence[str] = (),
        events: ProgressEvents | None = None,
        rehash: bool = False,
    ) -> None:
        self.store = store
        self.config = config
        self._load_models = load_models
        self.collections = list(collections)
        """Every representation collection of the index (garbage collection visits them)."""
        self.bound: list[Bound] = []
        self.ocr: RapidOcr | None = None
        self.speech: Any = None
        self.exclude = list(exclude)
        self.events = events or ProgressEvents()
        self.rehash = rehash
        self.clock = StageClock()
        self.summary = RunSummary()
        self._failed_paths: set[str] = set()
        self._claimed: set[str] = set()
        self._pending_copies: list[dict[str, Any]] = []

    # -- public ----------------------------------------------------------------
    def run(self, roots: Sequence[str]) -> RunSummary:
        started = time.perf_counter()
        self.store.ensure_collection(FILES)
        self.store.ensure_collection(ITEMS)
        known = {row["path"]: row for row in self.store.get(FILES)}
        complete_hashes: dict[str, dict[str, Any]] = {}
        for row in known.values():
            complete_hashes.setdefault(row["content_hash"], row)

        self.events.phase("scanning")
        plan = self._plan(roots, known, complete_hashes)
        if plan.tasks:  # models load only when there is something to encode
            t0 = time.perf_counter()
            self.bound, self.ocr, self.speech = self._load_models()
            self.clock.add("load_models", t0)
            for bound in self.bound:
                bound.rep.ensure_storage(self.store, bound.model)
            self.events.phase("reading and encoding", total=len(plan.tasks))
        self._encode_and_write(plan)
        self.events.phase("writing")
        stale = stale_paths(
            known,
            roots,
            seen=plan.seen_paths,
            unlisted=plan.unreadable_dirs,
            failed=self._failed_paths,
        )
        if stale:
            self.store.delete(FILES, Filter(paths=tuple(stale)))
        self.summary.removed += sum(
            1 for p in stale if p not in self._claimed and p not in self._failed_paths
        )
        t0 = time.perf_counter()
        collect_garbage(self.store, self.collections)
        self.clock.add("gc", t0)
        self.events.phase("optimising indexes")
        t0 = time.perf_counter()
        self.store.optimize(ann_min_rows=self.config.ann_min_rows)
        self.clock.add("optimize", t0)
        self.summary.seconds = time.perf_counter() - started
        self.summary.stage_seconds = {k: round(v, 3) for k, v in self.clock.seconds.items()}
        return self.summary

    # -- plan --------------------------------------------------------------------
    def _fail(self, path: str, reason: str) -> None:
        self._failed_paths.add(path)
        self.summary.failed += 1
        self.summary.failures.append(FileFailure(path, reason))
        self.events.file_failed(path, reason)

    def _plan(
        self,
        roots: Sequence[str],
        known: dict[str, dict[str, Any]],
        complete_hashes: dict[str, dict[str, Any]],
    ) -> Plan:
        plan = Plan()
        partial_hashes: set[str] | None = None
        claimed: set[str] = set()
        seen = 0
        t0 = time.perf_counter()
        for entry in walk(roots, exclude=self.exclude):
            if isinstance(entry, WalkProblem):
                if entry.reason.startswith("cannot list directory"):
                    plan.unreadable_dirs.append(entry.path)
                self._fail(entry.path, entry.reason)
                continue
            seen += 1
            if seen % 200 == 0:
                self.events.scanning(seen)
            video = video_of_sidecar(entry.path)
            if video is not None:  # its text is indexed with the video's segments
                self.summary.skipped += 1
                reason = f"subtitles of {os.path.basename(video)}, indexed with it"
                self.summary.skipped_files.append(FileFailure(entry.path, reason))
                continue
            entry, sidecars = with_sidecars(entry)
            plan.seen_paths.add(entry.path)
            old = known.get(entry.path)
            if (
                old is not None
                and not self.rehash
                and old["size"] == entry.size
                and old["mtime_ns"] == entry.mtime_ns
            ):
                self.summary.unchanged += 1
                continue
            try:
                digest, head = content_hash(entry.path)
            except OSError as exc:
                self._fail(entry.path, f"cannot read: {exc.strerror or exc}")
                continue
            kind = sniff(head)
            if kind == "video":
                digest = combined_hash(digest, sidecars)
            if kind is None:
                reason = "empty file" if entry.size == 0 else "content is not a supported type"
                if entry.size and has_media_extension(entry.path):
                    self._fail(entry.path, f"{reason} (the extension suggests one)")
                else:
                    self.summary.skipped += 1
                    self.summary.skipped_files.append(FileFailure(entry.path, reason))
                continue
            row = file_row(entry, digest, kind, 0)
            if old is not None and old["content_hash"] == digest:
                self.summary.unchanged += 1  # touched, not changed: refresh size/mtime only
                row["n_items"] = old["n_items"]
                plan.direct_rows.append(row)
                continue
            reuse = complete_hashes.get(digest)
            if reuse is not None:
                row["n_items"] = reuse["n_items"]
                plan.direct_rows.append(row)
                if "_pending_task" in reuse:
                    # Same content as a file encoded in this run: its row (and its count)
                    # waits until that content is committed, or fails with it.
                    row["_pending_task"] = reuse["_pending_task"]
                    row["_status"] = "added" if old is None else "updated"
                elif (
                    old is None
                    and reuse["path"] not in claimed
                    and not os.path.exists(reuse["path"])
                ):
                    claimed.add(reuse["path"])
                    self.summary.moved += 1
                elif old is None:
                    self.summary.added += 1
                else:
                    self.summary.updated += 1
                continue
            task = Task(entry, digest, kind, "updated" if old is not None else "added")
            if partial_hashes is None:
                partial_hashes = self.store.distinct(ITEMS, "content_hash") - set(complete_hashes)
            if digest in partial_hashes:  # resuming content a crashed run half-wrote
                rows = self.store.get(ITEMS, Filter(content_hashes=(digest,)), ["id"])
                task.skip = {r["id"] for r in rows}
            plan.tasks.append(task)
            complete_hashes[digest] = row  # a second copy in this run is a direct row
            row["_pending_task"] = task
        self.clock.add("scan_hash", t0)
        self._claimed = claimed
        # Copies of content encoded in this run get their rows once the content is done.
        self._pending_copies = [r for r in plan.direct_rows if "_pending_task" in r]
        plan.direct_rows = [r for r in plan.direct_rows if "_pending_task" not in r]
        self.events.planned(len(plan.tasks))
        return plan

    # -- decode / encode / write ----------------------------------------------------
    def _pieces(self, tasks: list[Task], maker: UnitMaker) -> Iterator[Piece]:
        for task in tasks:
            if task.file_kind == "pdf":
                try:
                    pages = maker.pdf_page_count(task.found.path)
                except (PolylensError, OSError) as exc:
                    task.failed = True
                    self._fail(task.found.path, str(exc))
                    continue
                ranges = [
                    range(i, min(i + PDF_PAGES_PER_PIECE, pages))
                    for i in range(0, pages, PDF_PAGES_PER_PIECE)
                ]
                task.pieces_left = len(ranges)
                for r in ranges:
                    yield Piece(task, r)
            elif task.file_kind == "video":
                try:
                    info, rules, windows = maker.video_windows(task.found.path)
                except (PolylensError, OSError) as exc:
                    task.failed = True
                    self._fail(task.found.path, str(exc))
                    continue
                task.pieces_left = len(windows)
                for window in windows:
                    yield Piece(task, video=(info, rules, window))
            else:
                task.pieces_left = 1
                yield Piece(task)

    def _make_units(self, piece: Piece, maker: UnitMaker) -> list[Unit]:
        task = piece.task
        path = task.found.path
        if task.file_kind == "image":
            units = maker.image(path, task.content_hash)
        elif task.file_kind == "pdf":
            assert piece.pages is not None
            units = maker.pdf_pages(path, task.content_hash, piece.pages, task.skip)
        elif task.file_kind == "video":
            assert piece.video is not None
            units = maker.video(path, task.content_hash, *piece.video)
        else:
            units = maker.text(path, task.content_hash, task.found.size)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise InputError(f"file vanished while being indexed: {exc.strerror or exc}") from exc
        now, _ = with_sidecars(FoundFile(path, st.st_size, st.st_mtime_ns))
        if now.size != task.found.size or now.mtime_ns != task.found.mtime_ns:
            raise InputError("file changed while being indexed; the next run will pick it up")
        return [u for u in units if u.item_id not in task.skip]

    def _encode_and_write(self, plan: Plan) -> None:
        maker = UnitMaker(
            self.config,
            ocr=self.ocr,
            speech=self.speech,
            clock=self.clock,
            prepare=pixel_preparers(self.bound),
            picture_side=picture_side(self.bound),
            video_reps=[b.name for b in self.bound if "video" in b.rep.kinds],
        )
        pending: list[Unit] = []
        encoded: dict[str, list[dict[str, Any]]] = {ITEMS: []}
        for bound in self.bound:
            if bound.rep.collection is not None:
                encoded[bound.rep.collection] = []
        owners: dict[Task, None] = {}  # insertion-ordered set of unfinished tasks
        # Pieces decoded ahead: at least a batch and a half, so that while the model
        # runs the decode threads fill the next batch instead of waiting for it (with a
        # smaller window decoding is added to the encode time, not overlapped with it).
        # Decoded units hold model-sized arrays, so this bounds memory to a few batches.
        window = max(2, self.config.workers * 2, self.config.batch_size * 3 // 2)
        # A video window yields tens of segments with several keyframes each: only enough
        # of them ahead to keep the decode threads busy.
        heavy_window = self.config.workers + 1
        with ThreadPoolExecutor(
            max_workers=self.config.workers,
            thread_name_prefix="decode",
            initializer=yield_to_the_encoder,
        ) as pool:
            inflight: deque[tuple[Piece, Future[list[Unit]]]] = deque()
            pieces = self._pieces(plan.tasks, maker)
            exhausted = False
            held: Piece | None = None  # a heavy piece waiting for room
            while True:
                while not exhausted and len(inflight) < window:
                    piece = held or next(pieces, None)
                    held = None
                    if piece is None:
                        exhausted = True
                        break
                    if piece.heavy and sum(p.heavy for p, _ in inflight) >= heavy_window:
                        held = piece
                        break
                    inflight.append((piece, pool.submit(self._make_units, piece, maker)))
                if not inflight:
                    break
                piece, future = inflight.popleft()
                task = piece.task
                try:
                    units = future.result()
                except Exception as exc:  # noqa: BLE001 - one bad file must not end the run
                    units = []
                    if not task.failed:
                        task.failed = True
                        self._fail(task.found.path, reason_of(exc))
                task.pieces_left -= 1
                if task.failed:
                    owners.pop(task, None)
                    continue
                task.unflushed += len(units)
                task.items += len(units)
                pending.extend(units)
                owners[task] = None
                while len(pending) >= self.config.batch_size:
                    batch = pending[: self.config.batch_size]
                    pending = pending[self.config.batch_size :]
                    self._encode(batch, encoded)
                if len(encoded[ITEMS]) >= self.config.commit_every:
                    self._flush(encoded, owners, plan)
            if pending:
                self._encode(pending, encoded)
                pending = []
            self._flush(encoded, owners, plan, final=True)

    def _encode(self, units: list[Unit], out: dict[str, list[dict[str, Any]]]) -> None:
        for bound in self.bound:
            if bound.rep.collection is not None:
                out[bound.rep.collection].extend(
                    bound.rep.encode(bound.model, units, self.config, self.clock)
                )
        for unit in units:
            out[ITEMS].append(
                {
                    "id": unit.item_id,
                    "content_hash": unit.content_hash,
                    "kind": unit.kind,
                    "page": unit.page,
                    "chunk": unit.chunk,
                    "text": unit.text,
                    "text_source": unit.text_source,
                    "width": unit.width,
                    "height": unit.height,
                    "start": unit.start,
                    "end": unit.end,
                }
            )
            unit.inputs = {}  # release pixels as soon as they are encoded
        self.events.units_encoded(len(units))

    def _flush(
        self,
        encoded: dict[str, list[dict[str, Any]]],
        owners: dict[Task, None],
        plan: Plan,
        *,
        final: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        # vectors, then items, then files: each visible only once what it points at is.
        for collection in [*(c for c in encoded if c != ITEMS), ITEMS]:
            for part in chunked(encoded[collection], 4096):
                self.store.upsert(collection, part)
        self.summary.items_written += len(encoded[ITEMS])
        by_hash: dict[str, int] = {}
        for row in encoded[ITEMS]:
            by_hash[row["content_hash"]] = by_hash.get(row["content_hash"], 0) + 1
        for rows in encoded.values():
            rows.clear()
        file_rows: list[dict[str, Any]] = []
        done: list[Task] = []
        for task in list(owners):
            task.unflushed -= by_hash.get(task.content_hash, 0)
            if task.failed:
                owners.pop(task, None)
            elif task.complete:
                total = task.items + len(task.skip)
                file_rows.append(file_row(task.found, task.content_hash, task.file_kind, total))
                done.append(task)
                owners.pop(task, None)
        finished = {t.content_hash: t for t in done}
        for row in list(self._pending_copies):
            source = finished.get(row["content_hash"])
            if source is not None:
                row.pop("_pending_task", None)
                status = row.pop("_status", "added")
                if status == "added":
                    self.summary.added += 1
                else:
                    self.summary.updated += 1
                row["n_items"] = source.items + len(source.skip)
                file_rows.append(row)
                self._pending_copies.remove(row)
        if final:
            file_rows.extend(plan.direct_rows)
            plan.direct_rows = []
            for row in self._pending_copies:
                self._fail(row["path"], "same content as a file that failed in this run")
            self._pending_copies = []
        if file_rows:
            self.store.upsert(FILES, file_rows)
        for task in done:
            task.written = True
            if task.status == "added":
                self.summary.added += 1
            else:
                self.summary.updated += 1
            self.events.file_done(task.found.path, task.items + len(task.skip))
        self.clock.add("write", t0)
