"""The facade users hold: open an index, add paths, search, read its status.

An index directory holds ``polylens.toml`` (settings), ``index.json`` (how it was built),
``last_run.json`` and ``lance/`` (the store). Models load lazily on first use.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from polylens import __version__
from polylens.config import CONFIG_FILE, IndexConfig, load_config
from polylens.encoders.base import ImageTextEncoder, TextEncoder
from polylens.encoders.ocr import RapidOcr
from polylens.encoders.registry import ModelRegistry
from polylens.errors import (
    ConfigError,
    IndexLockedError,
    IndexNotFoundError,
    InputError,
    ItemNotFoundError,
    ModelNotAvailableError,
    StoreError,
)
from polylens.ingest.pipeline import Ingestor, ProgressEvents
from polylens.ingest.sources import normalise_root, under_any
from polylens.meta import (
    LAST_RUN_FILE,
    META_FILE,
    IndexMeta,
    ModelRecord,
    check_model,
    read_meta,
    write_json_atomic,
    write_meta,
    write_text_atomic,
)
from polylens.search.ann import AnnSettings
from polylens.search.reader import StoreReader
from polylens.search.searcher import Searcher, SearchRequest, as_image
from polylens.search.snapshot import SnapshotKeeper, refresh_saved_ann
from polylens.store.base import FILES, ITEMS, VEC_IMAGE, Filter, Store
from polylens.store.lance import LanceStore
from polylens.types import KINDS, Hit, IndexStatus, ItemInfo, ModelInfo, RunSummary

log = logging.getLogger(__name__)

STORE_DIR = "lance"
ANN_DIR = "ann"
LOCK_FILE = ".lock"
_UNSET = object()


class Index:
    """A polylens index in a directory. Use :func:`polylens.open` to get one."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        registry: ModelRegistry | None = None,
        store: Store | None = None,
        serve_from_memory: bool = True,
        **settings: Any,
    ) -> None:
        """``serve_from_memory``: after the first search, build an in-memory read model in
        the background and answer later searches from it (see :meth:`warm`). One-shot
        callers such as the CLI turn it off; searches are correct either way."""
        self.path = Path(path).expanduser().absolute()
        exists = (self.path / META_FILE).is_file() or (self.path / CONFIG_FILE).is_file()
        if not exists and not create:
            raise IndexNotFoundError(
                f"no polylens index at {self.path}; create one with `polylens index PATHS "
                f"--index {self.path}`"
            )
        self._registry = registry or ModelRegistry.with_plugins()
        self._meta_stamp = _stamp(self.path / META_FILE)
        self._meta = read_meta(self.path) or IndexMeta(polylens_version=__version__)
        self._explicit = {k: v for k, v in settings.items() if v is not None}
        self.config = self._effective_config(self._explicit)
        if not exists:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the index directory {self.path}: {exc}") from exc
            # Atomic: a run killed here must not leave a truncated file that every later
            # run refuses as invalid TOML.
            write_text_atomic(self.path / CONFIG_FILE, self.config.to_toml())
        self._store = store or LanceStore(self.path / STORE_DIR)
        self._serve_from_memory = serve_from_memory
        self._keeper = SnapshotKeeper(self._store, self.path / ANN_DIR, self._ann_settings())
        self._image_encoder: Any = _UNSET
        self._text_encoder: Any = _UNSET
        self._ocr: RapidOcr | None = None
        self.warnings: list[str] = []
        self._load_errors: dict[str, str] = {}
        # Searches may run on many threads (the server): a model loads once, not per thread.
        self._models_lock = threading.RLock()

    # -- settings and models ----------------------------------------------------------
    def _effective_config(self, explicit: dict[str, Any]) -> IndexConfig:
        config = load_config(self.path, explicit)
        meta = self._meta
        for role, record in (("image", meta.image_model), ("text", meta.text_model)):
            key = f"{role}_model"
            if record is None:
                continue
            if key in explicit:
                requested = self._registry.canonical(role, explicit[key])  # type: ignore[arg-type]
                if requested != record.resolved:
                    check_model(role, record, explicit[key], self.path)
            else:
                config = config.replace(**{key: record.name})
        return config

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
            for role in ("image", "text"):
                before = getattr(self._meta, f"{role}_model")
                after = getattr(meta, f"{role}_model")
                if (before is None or before.dim is None) and after is not None and after.dim:
                    # Searches ran without this model because the index had no vectors of
                    # it; now it has: load it on the next search.
                    if getattr(self, f"_{role}_encoder") is None:
                        setattr(self, f"_{role}_encoder", _UNSET)
            self._meta = meta
            self.config = self._effective_config(self._explicit)

    def _load_encoder(self, role: str, *, for_search: bool) -> Any:
        """Load the model for ``role`` once; an unavailable one is a warning, not an error."""
        attr = f"_{role}_encoder"
        if getattr(self, attr) is not _UNSET:
            return getattr(self, attr)
        with self._models_lock:
            if getattr(self, attr) is _UNSET:
                self._load_encoder_locked(role, attr, for_search=for_search)
        return getattr(self, attr)

    def _load_encoder_locked(self, role: str, attr: str, *, for_search: bool) -> None:
        record = getattr(self._meta, f"{role}_model")
        encoder = None
        if not (for_search and (record is None or record.dim is None)):
            load = self._registry.load_image_text if role == "image" else self._registry.load_text
            try:
                encoder = load(
                    getattr(self.config, f"{role}_model"),
                    device=self.config.device,
                    batch_size=self.config.batch_size,
                )
            except ModelNotAvailableError as exc:
                what = "image embeddings" if role == "image" else "text embeddings (BM25 only)"
                message = f"{role} model unavailable, continuing without {what}: {exc}"
                log.warning(message)
                self.warnings.append(message)
                self._load_errors[role] = str(exc)
        if encoder is not None and record is not None and record.dim not in (None, encoder.dim):
            raise ConfigError(
                f"{role} model {encoder.name!r} gives {encoder.dim}-d vectors but the index "
                f"holds {record.dim}-d ones"
            )
        setattr(self, attr, encoder)

    def _load_image_encoder(self, *, for_search: bool) -> ImageTextEncoder | None:
        return self._load_encoder("image", for_search=for_search)

    def _load_text_encoder(self, *, for_search: bool) -> TextEncoder | None:
        return self._load_encoder("text", for_search=for_search)

    def _record_models(self, roots: Iterable[str]) -> None:
        meta = self._meta
        for role, encoder in (("image", self._image_encoder), ("text", self._text_encoder)):
            name = getattr(self.config, f"{role}_model")
            canonical = self._registry.canonical(role, name)  # type: ignore[arg-type]
            current = getattr(meta, f"{role}_model")
            if canonical == "none":
                if current is None:
                    setattr(
                        meta, f"{role}_model", ModelRecord(name=name, resolved="none", dim=None)
                    )
                continue
            dim = encoder.dim if encoder not in (None, _UNSET) else None
            if current is None or current.dim is None:
                record = ModelRecord(
                    name=name, resolved=canonical, dim=dim, error=self._load_errors.get(role)
                )
                setattr(meta, f"{role}_model", record)
        meta.roots = sorted(set(meta.roots) | set(roots))
        meta.polylens_version = __version__
        write_meta(self.path, meta)

    def _record_roots(self, roots: Iterable[str]) -> None:
        self._meta.roots = sorted(set(self._meta.roots) | set(roots))
        write_meta(self.path, self._meta)

    # -- writing ---------------------------------------------------------------------
    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        try:
            handle = open(self.path / LOCK_FILE, "a+")  # noqa: SIM115 - held for the block
        except OSError as exc:
            raise StoreError(f"the index directory {self.path} is not writable: {exc}") from exc
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise IndexLockedError(
                        f"another process is writing to the index at {self.path}"
                    ) from exc
                raise
            yield
        finally:
            handle.close()

    def add(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        events: ProgressEvents | None = None,
        rehash: bool = False,
    ) -> RunSummary:
        """Index files and folders; files that vanished from under them leave the index."""
        roots = [normalise_root(p) for p in paths]
        if not roots:
            raise InputError("nothing to index: give at least one file or folder")
        for root in roots:
            if not os.path.exists(root):
                raise InputError(f"{root} does not exist")
        with self._write_lock():

            def load_encoders() -> tuple[Any, Any, Any]:
                image_encoder = self._load_image_encoder(for_search=False)
                text_encoder = self._load_text_encoder(for_search=False)
                if self._meta.image_model and self._meta.image_model.dim and image_encoder is None:
                    self.warnings.append(
                        "this index has image embeddings but the image model is unavailable "
                        "now: files added in this run will not be searchable by image"
                    )
                ocr = self._get_ocr() if self.config.ocr else None
                self._record_models(roots)
                return image_encoder, text_encoder, ocr

            ingestor = Ingestor(
                self._store,
                self.config,
                load_encoders=load_encoders,
                exclude=[str(self.path)],
                events=events,
                rehash=rehash,
            )
            summary = ingestor.run(roots)
            refresh_saved_ann(self._store, self.path / ANN_DIR, self._ann_settings())
            if set(roots) - set(self._meta.roots):
                self._record_roots(roots)
            summary.warnings.extend(self.warnings)
            write_json_atomic(self.path / LAST_RUN_FILE, summary.to_dict())
        return summary

    def refresh(self, *, events: ProgressEvents | None = None) -> RunSummary:
        """Re-index every root this index was built from."""
        roots = [r for r in self._meta.roots if os.path.exists(r)]
        if not self._meta.roots:
            raise InputError("this index has no recorded roots yet; add paths first")
        return self.add(roots or self._meta.roots, events=events)

    def _ann_settings(self) -> AnnSettings:
        return AnnSettings(min_rows=self.config.ann_min_rows, nprobe=self.config.ann_nprobe)

    def optimize(self) -> None:
        """Fold recent writes into the store's indexes and bring the saved ANN index up to
        date. Every indexing run ends with this; call it after writing to the store directly."""
        with self._write_lock():
            self._store.optimize(ann_min_rows=self.config.ann_min_rows)
            refresh_saved_ann(self._store, self.path / ANN_DIR, self._ann_settings())

    def warm(self) -> bool:
        """Build the in-memory read model now (servers call this at start-up) so the next
        searches skip store round trips. Returns whether one is in use."""
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
    ) -> list[Hit]:
        """Search by text, by image (a path, bytes or PIL image), or both.

        ``retrievers`` limits fusion to some of ``image``, ``text`` and ``bm25``
        (evaluation compares them; users rarely need it).
        """
        kinds: tuple[str, ...] | None
        if kind is None:
            kinds = None
        elif isinstance(kind, str):
            kinds = (kind,)
        else:
            kinds = tuple(kind)
        picture = None
        if image is not None:
            if isinstance(image, (str, os.PathLike, bytes)):
                source = image if isinstance(image, bytes) else os.fspath(image)
                try:
                    picture = as_image(
                        source,
                        max_pixels=self.config.max_image_pixels,
                        max_side=self.config.max_image_side,
                    )
                except FileNotFoundError as exc:
                    raise InputError(f"query image not found: {image}") from exc
                except Exception as exc:  # noqa: BLE001 - every decode failure is bad input
                    if isinstance(exc, InputError):
                        raise
                    raise InputError(f"cannot read the query image: {exc}") from exc
            else:
                picture = image
        searcher = self._searcher()
        return searcher.search(
            SearchRequest(
                text=query,
                image=picture,
                k=k,
                kinds=kinds,
                offset=offset,
                retrievers=tuple(retrievers) if retrievers is not None else None,
                content_hashes=self._hashes_under(searcher, path_prefix),
            )
        )

    def _searcher(self) -> Searcher:
        self._reload_meta()
        snapshot = self._keeper.current(start_build=self._serve_from_memory)
        return Searcher(
            snapshot if snapshot is not None else StoreReader(self._store),
            self.config,
            image_encoder=self._load_image_encoder(for_search=True),
            text_encoder=self._load_text_encoder(for_search=True),
        )

    @staticmethod
    def _hashes_under(searcher: Searcher, path_prefix: str | None) -> tuple[str, ...] | None:
        if not path_prefix:
            return None
        if "\x00" in path_prefix:
            raise InputError("path_prefix must not contain NUL bytes")
        return searcher.reader.hashes_under(normalise_root(path_prefix))

    def item(self, item_id: str) -> ItemInfo:
        """An indexed item with its text and every path that holds its content."""
        rows = self._store.get(ITEMS, Filter(ids=(item_id,)))
        if not rows:
            raise ItemNotFoundError(f"no item {item_id!r} in this index")
        row = rows[0]
        files = self._store.get(FILES, Filter(content_hashes=(row["content_hash"],)))
        if not files:
            raise ItemNotFoundError(f"item {item_id!r} belongs to no indexed file")
        paths = sorted(f["path"] for f in files)
        return ItemInfo(
            id=row["id"],
            kind=row["kind"],
            page=row["page"],
            chunk=row["chunk"],
            path=paths[0],
            other_paths=tuple(paths[1:]),
            text=row["text"],
            text_source=row["text_source"],
            width=row["width"],
            height=row["height"],
            content_hash=row["content_hash"],
            file_kind=files[0]["file_kind"],
        )

    def similar(
        self, item_id: str, *, k: int = 10, kind: str | Iterable[str] | None = None
    ) -> list[Hit]:
        """More like this: the item's own image-space vector as the query, or its text."""
        info = self.item(item_id)
        kinds = (kind,) if isinstance(kind, str) else (tuple(kind) if kind else None)
        rows = (
            self._store.get(VEC_IMAGE, Filter(ids=(item_id,)), ["vector"])
            if self._store.has_collection(VEC_IMAGE)
            else []
        )
        if rows:
            request = SearchRequest(
                k=k, kinds=kinds, vector=rows[0]["vector"], exclude_ids=(item_id,)
            )
        elif info.text.strip():
            request = SearchRequest(text=info.text[:1000], k=k, kinds=kinds, exclude_ids=(item_id,))
        else:
            return []
        return self._searcher().search(request)

    def item_image(self, item_id: str, *, max_side: int | None = None) -> Any:
        """The picture of an image or page item (PIL), read from the indexed file.

        Only files the index holds are opened, and only while they still lie under a root
        the index was built from (no symlink escapes)."""
        info = self.item(item_id)
        if info.kind == "text":
            raise ItemNotFoundError(f"item {item_id!r} is text; it has no image")
        path = self._safe_path(info)
        side = max_side or self.config.max_image_side
        if info.kind == "image":
            from polylens.ingest.images import load_image

            return load_image(path, max_pixels=self.config.max_image_pixels, max_side=side)
        from polylens.ingest.pdf import PdfFile

        with PdfFile(path, max_pages=self.config.max_pdf_pages) as pdf:
            return pdf.render((info.page or 1) - 1, dpi=self.config.pdf_ocr_dpi, max_side=side)

    def item_file(self, item_id: str) -> str:
        """The real path of the file holding an item, checked as in :meth:`item_image`."""
        return self._safe_path(self.item(item_id))

    def _safe_path(self, info: ItemInfo) -> str:
        self._reload_meta()
        roots = [os.path.realpath(r) for r in self._meta.roots]
        for candidate in (info.path, *info.other_paths):
            real = os.path.realpath(candidate)
            if os.path.isfile(real) and under_any(real, roots):
                return real
        raise ItemNotFoundError(
            f"the file of item {info.id!r} is gone or lies outside the indexed folders"
        )

    def status(self) -> IndexStatus:
        self._reload_meta()
        meta = self._meta
        items = {kind: self._store.count(ITEMS, Filter(kinds=(kind,))) for kind in KINDS}
        models = []
        for role, record in (("image", meta.image_model), ("text", meta.text_model)):
            if record is None:
                continue
            available = record.dim is not None
            reason = None
            if record.resolved == "none":
                reason = "disabled"
            elif not available:
                reason = record.error or "could not be loaded when the index was built"
            models.append(
                ModelInfo(role, record.name, record.resolved, record.dim, available, reason)
            )
        ocr_name = "rapidocr-onnxruntime" if self.config.ocr else "off"
        models.append(ModelInfo("ocr", ocr_name, None, None, self.config.ocr))
        last = None
        last_path = self.path / LAST_RUN_FILE
        if last_path.is_file():
            import json

            try:
                last = RunSummary.from_dict(json.loads(last_path.read_text(encoding="utf-8")))
            except (ValueError, TypeError):
                last = None
        size = sum(_size_of(p) for p in self.path.rglob("*"))
        return IndexStatus(
            path=str(self.path),
            files=self._store.count(FILES),
            items=items,
            models=models,
            roots=list(meta.roots),
            size_bytes=size,
            schema_version=meta.schema_version,
            last_run=last,
        )

    def close(self) -> None:
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


def _size_of(path: Path) -> int:
    """Bytes of a regular file, 0 for anything else or a file removed meanwhile (the store
    compacts and deletes files while a concurrent run writes)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0


def open_index(
    path: str | os.PathLike[str],
    *,
    create: bool = True,
    serve_from_memory: bool = True,
    **settings: Any,
) -> Index:
    """Open (or create) the index at ``path``. Keyword settings override ``polylens.toml``."""
    return Index(path, create=create, serve_from_memory=serve_from_memory, **settings)
