"""BM25 over every item's text (text layers, OCR, passages), ranked by one implementation
whichever path answers.

The read model ranks with :class:`~polylens.representations.lexical.Bm25Index` in memory.
A one-shot search (the CLI) used to ask LanceDB's full-text index instead, whose scoring
and tokenisation differ in details: on questions over real multi-page PDFs the two put the
right page at different ranks for about 4 questions in 10. Now every path ranks with the
same postings: a writer saves them beside the store (tagged with the store's change token),
a one-shot search loads them, and builds them from the stored texts when they are stale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from polylens.meta import write_atomic
from polylens.representations.base import (
    BuildContext,
    Needs,
    Query,
    Ranked,
    Representation,
    SearchContext,
)
from polylens.representations.dense import ann_dir
from polylens.representations.lexical import Bm25Index, Vocabulary
from polylens.representations.masks import FilterMasks
from polylens.store.base import ITEMS, Store
from polylens.types import KINDS

log = logging.getLogger(__name__)

_ARRAYS = ("starts", "docs", "weights", "upper")
_FILES = ("bm25.npz", "bm25.items.arrow", "bm25.terms.arrow", "bm25.token")


@dataclass
class Bm25Part:
    index: Bm25Index
    ids: list[str]
    masks: FilterMasks

    def search(self, text: str, k: int, where: Any) -> tuple[list[str], list[float]]:
        rows, scores = self.index.search(text, k, self.masks(where))
        return [self.ids[r] for r in rows], scores.tolist()

    def attainable(self, text: str) -> float:
        return self.index.attainable(text)


@dataclass
class ServerBm25:
    """BM25 its store ranks (Qdrant's sparse vectors with IDF): the same analyser and
    formula, nothing held here."""

    store: Store

    def search(self, text: str, k: int, where: Any) -> tuple[list[str], list[float]]:
        hits = self.store.search_text(ITEMS, text, k, where)
        return [h.row["id"] for h in hits], [h.score for h in hits]

    def attainable(self, text: str) -> float:
        return self.store.text_attainable(ITEMS, text) or 0.0


class Bm25(Representation):
    name = "bm25"
    title = "BM25 over text layers, OCR and passages"
    kinds = tuple(KINDS)
    needs = Needs(text=True)
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    modality = "text"
    eval_name = "bm25"
    weight_key = "weight_bm25"

    def __init__(self) -> None:
        self.vocabulary = Vocabulary()
        """Shared by successive read models of one index: a rebuild analyses only new texts."""

    @property
    def algorithm(self) -> str:
        return "bm25-snowball-english"

    def build_part(self, ctx: BuildContext) -> Bm25Part:
        """Over the read model's own item rows (and its item filter masks)."""
        texts = ctx.item_texts or []
        index = Bm25Index.build(self.vocabulary, ctx.ids, texts)
        self.vocabulary.forget_except(set(ctx.ids))
        assert ctx.item_masks is not None
        return Bm25Part(index, ctx.ids, ctx.item_masks)

    def retrieve(self, query: Query, ctx: SearchContext) -> Ranked | None:
        if not query.text:
            return None
        part = ctx.part if ctx.part is not None else self.part_from_store(ctx)
        ids, scores = part.search(query.text, ctx.depth, ctx.where)
        attainable = part.attainable(query.text)
        evidence = [s / attainable for s in scores] if attainable > 0 else None
        weight = self.weight(ctx.config) * query.text_share
        return Ranked(ids, scores, weight=weight, evidence=evidence, curve="bm25")

    # -- the one-shot path: saved postings, or postings built from the store ------------
    def load_store_part(self, ctx: SearchContext) -> Bm25Part | ServerBm25:
        if ctx.store.searches_itself:
            return ServerBm25(ctx.store)
        token = repr(ctx.store.change_token())
        if ctx.index_dir is not None:
            saved = _load(ann_dir(ctx.index_dir), token)
            if saved is not None:
                return saved
        return _build(ctx.store, Vocabulary())

    def after_write(self, ctx: BuildContext) -> None:
        if ctx.store.searches_itself:  # the store keeps its own postings
            return
        part = _build(ctx.store, Vocabulary())
        _save(ann_dir(ctx.index_dir), part, repr(ctx.store.change_token()))

    def drop(self, store: Store, index_dir: Path) -> None:
        for name in _FILES:
            (ann_dir(index_dir) / name).unlink(missing_ok=True)


def _build(store: Store, vocabulary: Vocabulary) -> Bm25Part:
    if store.has_collection(ITEMS):
        items = store.scan(ITEMS, ["id", "kind", "content_hash", "text"]).combine_chunks()
    else:
        items = pa.table(
            {c: pa.array([], pa.string()) for c in ("id", "kind", "content_hash", "text")}
        )
    ids = items.column("id").to_pylist()
    index = Bm25Index.build(vocabulary, ids, items.column("text").to_pylist())
    return Bm25Part(index, ids, FilterMasks.of(items))


def _save(directory: Path, part: Bm25Part, token: str) -> None:
    """Arrays, strings, then the token last: a reader trusts the files only when the
    token matches the store now, so a crash between the writes leaves them unused."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bm25.token").unlink(missing_ok=True)
    index = part.index
    terms = sorted(index.vocabulary.ids, key=index.vocabulary.ids.__getitem__)
    write_atomic(
        directory / "bm25.npz",
        lambda f: np.savez(
            f, n_docs=np.int64(index.n_docs), **{a: getattr(index, a) for a in _ARRAYS}
        ),
    )
    items = pa.table(
        {
            "id": pa.array(part.ids, pa.string()),
            "kind_code": pa.array(part.masks.kinds, pa.uint8()),
            "content_hash": part.masks.hashes,
        }
    )
    write_atomic(directory / "bm25.items.arrow", lambda f: _write_arrow(f, items))
    write_atomic(
        directory / "bm25.terms.arrow", lambda f: _write_arrow(f, pa.table({"term": terms}))
    )
    write_atomic(directory / "bm25.token", lambda f: f.write(token.encode("utf-8")))


def _load(directory: Path, token: str) -> Bm25Part | None:
    try:
        if (directory / "bm25.token").read_bytes().decode("utf-8") != token:
            return None
        with np.load(directory / "bm25.npz", allow_pickle=False) as data:
            arrays = {a: data[a] for a in _ARRAYS}
            n_docs = int(data["n_docs"])
        items = _read_arrow(directory / "bm25.items.arrow")
        terms = _read_arrow(directory / "bm25.terms.arrow").column("term").to_pylist()
    except (OSError, ValueError, KeyError, pa.ArrowInvalid) as exc:
        log.debug("saved BM25 postings unusable, building them: %s", exc)
        return None
    vocabulary = Vocabulary()
    vocabulary.ids = {term: n for n, term in enumerate(terms)}
    index = Bm25Index(vocabulary, n_docs=n_docs, **arrays)
    masks = FilterMasks(
        items.column("kind_code").to_numpy().astype(np.uint8),
        items.column("content_hash").combine_chunks(),
    )
    return Bm25Part(index, items.column("id").to_pylist(), masks)


def _write_arrow(handle: Any, table: pa.Table) -> None:
    with pa.ipc.new_file(handle, table.schema) as writer:
        writer.write_table(table)


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()
