"""The facade users hold: open an index, add paths, search, read its status.

An index directory holds ``polylens.toml`` (settings), ``index.json`` (how it was built),
``last_run.json`` and ``lance/`` (the store). Models load lazily on first use.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from polylens import __version__
from polylens.config import CONFIG_FILE, IndexConfig, load_config
from polylens.encoders.ocr import RapidOcr
from polylens.encoders.registry import ModelRegistry
from polylens.engine_answers import IndexAnswers
from polylens.engine_items import IndexItems
from polylens.errors import (
    IndexNotFoundError,
    InputError,
    StoreError,
)
from polylens.ingest.events import ProgressEvents
from polylens.ingest.sources import normalise_root
from polylens.lineup import Lineup
from polylens.locking import exclusive_lock
from polylens.meta import (
    IMAGE_TOWERS_DIR,
    META_FILE,
    QUERY_TOWERS_DIR,
    IndexMeta,
    read_meta,
    write_text_atomic,
)
from polylens.representations.ann import AnnSettings
from polylens.representations.registry import RepresentationRegistry
from polylens.search.query_image import query_digest, query_image
from polylens.search.reader import StoreReader
from polylens.search.rerank import RerankerSlot
from polylens.search.searcher import Searcher, SearchRequest, check_request
from polylens.search.snapshot import SnapshotKeeper, refresh_derived
from polylens.status import index_status
from polylens.store.base import Store
from polylens.store.locations import open_store, parse_store
from polylens.store.mirror import MirrorStore, open_mirror, write_mirror
from polylens.types import (
    IndexStatus,
    RunSummary,
    SearchResults,
)
from polylens.writer import IndexWriter

log = logging.getLogger(__name__)

STORE_DIR = "lance"
LOCK_FILE = ".lock"


class Index(IndexItems, IndexAnswers):
    """A polylens index in a directory. Use :func:`polylens.open` to get one."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        registry: ModelRegistry | None = None,
        representations: RepresentationRegistry | None = None,
        store: Store | str | None = None,
        serve_from_memory: bool = True,
        **settings: Any,
    ) -> None:
        """``serve_from_memory``: after the first search, build an in-memory read model in
        the background and answer later searches from it (see :meth:`warm`). One-shot
        callers such as the CLI turn it off; searches are correct either way.

        A new index's directory is created by the first write (:meth:`add`), not here:
        a run refused for bad arguments leaves nothing behind."""
        self.path = Path(path).expanduser().absolute()
        exists = (self.path / META_FILE).is_file() or (self.path / CONFIG_FILE).is_file()
        if not exists and not create:
            raise IndexNotFoundError(
                f"no polylens index at {self.path}; create one with `polylens index PATHS "
                f"--index {self.path}`"
            )
        self._exists = exists
        self._lineup = Lineup(
            registry or ModelRegistry.with_plugins(),
            representations or RepresentationRegistry.with_plugins(),
        )
        self._lineup.slots.query_dir = self.path / QUERY_TOWERS_DIR
        self._lineup.slots.image_dir = self.path / IMAGE_TOWERS_DIR
        self._meta_stamp = _stamp(self.path / META_FILE)
        self._meta = read_meta(self.path) or IndexMeta(polylens_version=__version__)
        if isinstance(store, str):  # a store URL is a setting like any other
            settings["store"], store = store, None
        self._explicit = {k: v for k, v in settings.items() if v is not None}
        self.config = self._effective_config(self._explicit)
        self._lineup.names(self._meta, self.config)  # unknown --with/--without names fail now
        self._given_store = store
        self._serve_from_memory = serve_from_memory
        self._mirror: MirrorStore | None = None
        self._ocr: RapidOcr | None = None
        self._rerank = RerankerSlot()

    @property
    def warnings(self) -> list[str]:
        """Models that could not be loaded, one line each (also in run summaries)."""
        return self._lineup.slots.warnings

    @property
    def _registry(self) -> ModelRegistry:
        return self._lineup.slots.registry

    @property
    def representations(self) -> list[str]:
        """The names of the index's representations (what a search fuses)."""
        self._reload_meta()
        return [rep.name for rep in self._lineup.recorded(self._meta)]

    @cached_property
    def _store(self) -> Store:
        if self._given_store is not None:
            return self._given_store
        if not self._exists:
            self._create()
        return open_store(self.config.store, self.path, self.path / STORE_DIR)

    @property
    def _embedded(self) -> bool:
        """The index's own LanceDB store (not one given, nor a Qdrant URL): the one with an
        Arrow mirror and on-disk derived files."""
        return self._given_store is None and parse_store(self.config.store) is None

    @property
    def _server_side(self) -> bool:
        """Searches run in the store itself: no in-memory read model is built."""
        return self._store.searches_itself

    @property
    def _reads(self) -> Store:
        """Where searches read: for a one-shot reader (``serve_from_memory=False``: the
        CLI's search and ask) that has not opened the store, the index's Arrow mirror
        while it is current, which spares importing LanceDB
        (:mod:`polylens.store.mirror`); else the store. Checked on every search: a
        commit since (this process's or another's) sends reads back to the store."""
        if (
            self._embedded
            and not self._serve_from_memory
            and self._exists
            and "_store" not in self.__dict__
        ):
            mirror = self._mirror
            if mirror is None or not mirror.is_current():
                mirror = self._mirror = open_mirror(self.path, self.path / STORE_DIR)
            if mirror is not None:
                return mirror
        return self._store

    @cached_property
    def _keeper(self) -> SnapshotKeeper:
        return SnapshotKeeper(
            self._store,
            self.path,
            self._ann_settings(),
            lambda: self._lineup.recorded(self._meta),
        )

    def _create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the index directory {self.path}: {exc}") from exc
        # Atomic: a run killed here must not leave a truncated file that every later
        # run refuses as invalid TOML.
        # The representations chosen by flags are recorded in index.json; written here they
        # would undo a later run's --with / --without.
        settings = self.config.replace(with_=(), without=())
        write_text_atomic(self.path / CONFIG_FILE, settings.to_toml())
        self._exists = True

    # -- settings and models ----------------------------------------------------------
    def _effective_config(self, explicit: dict[str, Any]) -> IndexConfig:
        config = load_config(self.path, explicit)
        return self._lineup.settle_models(self._meta, config, explicit, self.path)

    def _reload_meta(self) -> None:
        """Pick up what another process (a concurrent ``polylens index``) recorded since
        this index was opened: a reader opened on a new index must not stay without
        models, or with old roots, for the rest of its life."""
        stamp = _stamp(self.path / META_FILE)
        if stamp is None or stamp == self._meta_stamp:
            return
        with self._models_lock:
            if stamp == self._meta_stamp:
                return
            meta = read_meta(self.path)
            self._meta_stamp = stamp
            if meta is None:
                return
            self._lineup.refresh_after_meta_change(self._meta, meta)
            self._meta = meta
            self.config = self._effective_config(self._explicit)

    def load_models(self, *, for_search: bool = True) -> list[str]:
        """Load the models searching (or indexing) needs now, not on first use; returns
        the representations that are ready."""
        self._reload_meta()
        bound = self._lineup.bound(self._meta, self.config, for_search=for_search)
        return [b.name for b in bound if b.model is not None]

    def model_loaded(self, name: str) -> bool:
        """Whether the model of representation ``name`` was loaded (or tried) in this process."""
        return self._lineup.slots.loaded(self._lineup.get(name)) is not None

    @property
    def _models_lock(self) -> threading.RLock:
        return self._lineup.slots._lock  # noqa: SLF001 - one lock for models and their records

    # -- writing ---------------------------------------------------------------------
    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        if not self._exists:
            self._create()
        with exclusive_lock(self.path / LOCK_FILE):
            yield

    def add(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        events: ProgressEvents | None = None,
        rehash: bool = False,
    ) -> RunSummary:
        """Index files and folders; files that vanished from under them leave the index.

        Items indexed while a model was unavailable get its vectors in the first run
        that can load it (only what that model reads is decoded again)."""
        roots = [normalise_root(p) for p in paths]
        if not roots:
            raise InputError("nothing to index: give at least one file or folder")
        for root in roots:
            if not os.path.exists(root):
                raise InputError(f"{root} does not exist")
        with self._write_lock():
            writer = IndexWriter(
                index_dir=self.path,
                store=self._store,
                config=self.config,
                meta=self._meta,
                lineup=self._lineup,
                ann=self._ann_settings(),
                get_ocr=self._get_ocr,
                events=events or ProgressEvents(),
            )
            summary = writer.run(roots, rehash=rehash)
            self._write_mirror()
            return summary

    def refresh(self, *, events: ProgressEvents | None = None) -> RunSummary:
        """Re-index every root this index was built from."""
        roots = [r for r in self._meta.roots if os.path.exists(r)]
        if not self._meta.roots:
            raise InputError("this index has no recorded roots yet; add paths first")
        return self.add(roots or self._meta.roots, events=events)

    def _write_mirror(self) -> None:
        if self._embedded:
            write_mirror(self._store, self.path, self.path / STORE_DIR)

    def _ann_settings(self) -> AnnSettings:
        return AnnSettings(min_rows=self.config.ann_min_rows, nprobe=self.config.ann_nprobe)

    def optimize(self) -> None:
        """Fold recent writes into the store's indexes and bring the saved ANN index up to
        date. Every indexing run ends with this; call it after writing to the store directly."""
        with self._write_lock():
            self._store.optimize(ann_min_rows=self.config.ann_min_rows)
            reps = self._lineup.recorded(self._meta)
            refresh_derived(self._store, self.path, self._ann_settings(), reps)
            self._write_mirror()

    def warm(self) -> bool:
        """Build the in-memory read model now (servers call this at start-up) so the next
        searches skip store round trips. Returns whether one is in use (never with a
        store that searches itself: Qdrant answers every query)."""
        if self._server_side:
            return False
        return self._keeper.build_now() is not None

    def _get_ocr(self) -> RapidOcr:
        if self._ocr is None:
            self._ocr = RapidOcr(presence_side=self.config.ocr_presence_side)
        return self._ocr

    # -- reading ---------------------------------------------------------------------
    def search(
        self,
        query: str | None = None,
        *,
        image: str | os.PathLike[str] | bytes | Any = None,
        k: int = 10,
        kind: str | Iterable[str] | None = None,
        offset: int = 0,
        retrievers: Iterable[str] | None = None,
        path_prefix: str | None = None,
        rerank: bool = True,
        exact: bool = False,
    ) -> SearchResults:
        """Search by text, by image (a path, bytes or PIL image), or both.

        Returns the hits best first, as a list with ``warnings`` (a part of the query that
        could not run, and why) and ``has_more``. ``retrievers`` limits fusion to some
        of the index's representations (``image``, ``text``, ``bm25``, ``late``, ...:
        evaluation compares them; an unknown name is an ``InputError``). ``exact``: score
        every page by MaxSim instead of the late-interaction first stage's candidates.

        Arguments and the query image are checked before any model loads.
        """
        kinds = (kind,) if isinstance(kind, str) else (tuple(kind) if kind is not None else None)
        request = SearchRequest(
            text=query,
            k=k,
            kinds=kinds,
            offset=offset,
            retrievers=tuple(retrievers) if retrievers is not None else None,
            rerank=rerank,
            exact=exact,
        )
        self._reload_meta()
        check_request(request, has_image=image is not None, known=self.representations)
        picture = query_image(image, self.config) if image is not None else None
        if picture is not None and not (query or "").strip():
            # An image-only query no representation can answer fails before a model loads.
            reason = self._lineup.image_query_refusal(self._meta)
            if reason is not None:
                raise InputError(f"cannot search by image: {reason}")
        searcher = self._searcher()
        return searcher.search(
            replace(
                request,
                image=picture,
                image_digest=query_digest(image),
                content_hashes=self._hashes_under(searcher, path_prefix),
            )
        )

    def _searcher(self) -> Searcher:
        self._reload_meta()
        snapshot = None
        memory = self._serve_from_memory or "_keeper" in self.__dict__  # one-shot: none built
        if memory and not self._server_side:
            snapshot = self._keeper.current(start_build=self._serve_from_memory)
        if snapshot is not None:
            for rep in self._lineup.recorded(self._meta):
                rep.forget_store_part()
        return Searcher(
            snapshot if snapshot is not None else StoreReader(self._reads),
            self.config,
            bound=self._lineup.bound(self._meta, self.config, for_search=True),
            store=self._reads,
            index_dir=self.path,
            unavailable=self._lineup.unavailable(self._meta),
            **self._reranker(),
        )

    def _reranker(self) -> dict[str, Any]:
        model, warning = self._rerank.get(
            self._registry,
            self.config.rerank,
            device=self.config.device,
            batch_size=self.config.batch_size,
            builders={"llm": self._listwise_reranker},
        )
        return {"reranker": model, "rerank_warning": warning}

    @staticmethod
    def _hashes_under(searcher: Searcher, path_prefix: str | None) -> tuple[str, ...] | None:
        if not path_prefix:
            return None
        if "\x00" in path_prefix:
            raise InputError("path_prefix must not contain NUL bytes")
        return searcher.reader.hashes_under(normalise_root(path_prefix))

    def similar(
        self, item_id: str, *, k: int = 10, kind: str | Iterable[str] | None = None
    ) -> SearchResults:
        """More like this: what the representations stored for the item (its image-space
        vector, its perceptual hash) as the query; else its text."""
        info = self.item(item_id)
        kinds = (kind,) if isinstance(kind, str) else (tuple(kind) if kind else None)
        searcher = self._searcher()
        request = SearchRequest(item_id=item_id, k=k, kinds=kinds, exclude_ids=(item_id,))
        hits = searcher.search(request)
        if hits or not info.text.strip():
            return hits
        return searcher.search(replace(request, item_id=None, text=info.text[:1000]))

    def status(self) -> IndexStatus:
        self._reload_meta()
        return index_status(self.path, self._store, self._meta, self.config, self._lineup)

    def close(self) -> None:
        if "_store" in self.__dict__:  # never create a store just to close it
            self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def open_index(
    path: str | os.PathLike[str],
    *,
    create: bool = True,
    serve_from_memory: bool = True,
    **settings: Any,
) -> Index:
    """Open (or create) the index at ``path``. Keyword settings override ``polylens.toml``."""
    return Index(path, create=create, serve_from_memory=serve_from_memory, **settings)
