"""Query planning: which representations a query reaches, fused, then resolved to hits.

Every representation of the index that accepts a part of the query (text, image, a stored
item) ranks items; the lists are fused by reciprocal rank, and lists a representation
marks as pinned (exact and near copies of a query image) go first. A representation whose
model is unavailable is skipped with a reason; an image query that no representation can
answer is refused (or, with text beside it, answered for the text with a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polylens.config import IndexConfig
from polylens.errors import InputError, PolylensError
from polylens.representations.base import Bound, Query, Ranked, SearchContext
from polylens.search.calibration import confidence_of, item_logits
from polylens.search.fusion import Fused, evidence_fusion, reciprocal_rank_fusion
from polylens.search.reader import Reader
from polylens.search.rerank import rerank
from polylens.search.snippets import snippet
from polylens.store.base import Filter, Store
from polylens.types import KINDS, Hit, SearchResults

log = logging.getLogger(__name__)

VERDICT_DEPTH = 10
"""Hits of a list looked at to say it has no good match."""


@dataclass(frozen=True)
class SearchRequest:
    text: str | None = None
    image: Any = None  # PIL image
    k: int = 10
    kinds: tuple[str, ...] | None = None
    offset: int = 0
    retrievers: tuple[str, ...] | None = None
    """Representations to use (None: every one the index has)."""
    content_hashes: tuple[str, ...] | None = None
    """Restrict results to these contents (how a path-prefix filter reaches the store)."""
    item_id: str | None = None
    """More like this: search by what the representations stored for this item."""
    image_digest: str | None = None
    """The content hash of the query image's bytes (exact copies are recognised by it)."""
    exclude_ids: tuple[str, ...] = ()
    rerank: bool = True
    """Let the index's reranker (if it has one) re-order the first hits."""
    exact: bool = False
    """Exhaustive scoring where a representation has an approximate first stage."""


class Searcher:
    def __init__(
        self,
        reader: Reader,
        config: IndexConfig,
        *,
        bound: Sequence[Bound],
        store: Store,
        index_dir: Path | None = None,
        unavailable: dict[str, str] | None = None,
        reranker: Any = None,
        rerank_warning: str | None = None,
    ) -> None:
        self.reader = reader
        """The store, or the in-memory snapshot of its current version."""
        self.config = config
        self.bound = list(bound)
        """The index's representations with their models (None: unavailable)."""
        self.store = store
        self.index_dir = index_dir
        self.unavailable = unavailable or {}
        """Why a representation cannot be searched (by name), for the messages users see."""
        self.reranker = reranker
        """The cross-encoder of the second stage (None: none, or it could not load)."""
        self.rerank_warning = rerank_warning

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bound)

    def search(self, request: SearchRequest) -> SearchResults:
        warnings: list[str] = []
        ranked = self.lists(request, warnings)
        fused = self.fuse(ranked)
        if request.exclude_ids:
            fused = [f for f in fused if f.id not in request.exclude_ids]
        text = (request.text or "").strip()
        fused = self._reranked(fused, text, request, warnings)
        hits, has_more = self._resolve(fused, ranked, text, request.offset, request.k)
        known = {hit.id: hit.confidence for hit in hits}
        return SearchResults(
            hits,
            warnings=warnings,
            has_more=has_more,
            no_good_match=self._no_good_match(fused, ranked, known),
        )

    def lists(self, request: SearchRequest, warnings: list[str] | None = None) -> dict[str, Ranked]:
        """Each representation's ranked list for the request, before fusion (``warnings``
        collects the parts of the query that could not run)."""
        check_request(request, has_image=request.image is not None, known=self.names)
        text = (request.text or "").strip()
        warnings = warnings if warnings is not None else []
        use = [b for b in self.bound if request.retrievers is None or b.name in request.retrievers]
        where = Filter(
            kinds=tuple(request.kinds) if request.kinds else None,
            content_hashes=request.content_hashes,
        )
        depth = max(50, 3 * (request.k + request.offset))
        image = self._usable_image(request.image, text, use, warnings)
        query = Query(
            text="" if request.item_id else text,
            image=None if request.item_id else image,
            item_id=request.item_id,
            text_share=1.0 if image is None else 1.0 - self.config.image_query_weight,
            image_digest=request.image_digest if image is not None else None,
            exact=request.exact,
        )
        return self._retrieve(query, use, depth, where)

    def fuse(
        self,
        ranked: dict[str, Ranked],
        *,
        method: str | None = None,
        weights: dict[str, float] | None = None,
        rrf_k: int | None = None,
    ) -> list[Fused]:
        """One list, best first: by the index's fusion settings, or the ones given (how
        ``eval --tune`` tries others without searching again). ``weights`` replace the
        settings' weights per representation."""
        method = method or self.config.fusion
        if weights:
            # a given weight replaces the setting's, keeping the query's share (text and
            # image parts of one query split the weight)
            reps = {b.name: b.rep for b in self.bound}
            chosen = {}
            for name, answer in ranked.items():
                base = reps[name].weight(self.config) if name in reps else 0.0
                share = answer.weight / base if base > 0 else 1.0
                chosen[name] = weights.get(name, base) * share
        else:
            chosen = {name: answer.weight for name, answer in ranked.items()}
        weights = chosen
        if method == "normalised" and any(a.curve for a in ranked.values() if not a.pinned):
            logits = item_logits(ranked, self._kinds_if_needed(ranked))
            fused = evidence_fusion({n: a.ids for n, a in ranked.items()}, logits, weights=weights)
        else:
            fused = reciprocal_rank_fusion(
                {name: r.ids for name, r in ranked.items()},
                weights=weights,
                k=rrf_k or self.config.rrf_k,
            )
        return _pinned_first(fused, ranked)

    def _reranked(
        self, fused: list[Fused], text: str, request: SearchRequest, warnings: list[str]
    ) -> list[Fused]:
        """The second stage, for queries with text (a cross-encoder reads words)."""
        if not text or request.item_id is not None or not request.rerank:
            return fused
        if self.rerank_warning:
            warnings.append(f"{self.rerank_warning}; results are in fused order")
        if self.reranker is None:
            return fused
        depth = max(self.config.rerank_depth, 0)
        items, _ = self.reader.items_and_paths([f.id for f in fused[:depth]])
        texts = {i: row["text"] or "" for i, row in items.items()}
        try:
            return rerank(fused, texts, text, self.reranker, depth)
        except PolylensError as exc:  # a remote reranker down or too slow: still answer
            warnings.append(f"the reranker failed ({exc}); results are in fused order")
            return fused

    def _kinds_if_needed(self, ranked: dict[str, Ranked]) -> dict[str, str]:
        """Item kinds, when some list ranked only some kinds (else none are needed)."""
        spans = {a.kinds for a in ranked.values() if a.curve and not a.pinned}
        if len(spans) <= 1:
            return {}
        ids = list({i for a in ranked.values() for i in a.ids})
        items, _ = self.reader.items_and_paths(ids)
        return {i: row["kind"] for i, row in items.items()}

    def _no_good_match(
        self, fused: list[Fused], ranked: dict[str, Ranked], known: dict[str, float | None]
    ) -> bool:
        """Whether every one of the first hits of the whole list (not of this page) is weak.
        The first few, not the first only: fusion orders by rank, so a confident hit can
        sit below one that a noisy list pushed up. ``known``: confidences this page already
        computed; only the rest (a later page, a short one) are looked up."""
        head = fused[:VERDICT_DEPTH]
        if not head:
            return False
        missing = [f.id for f in head if f.id not in known]
        items, _ = self.reader.items_and_paths(missing) if missing else ({}, {})
        confidences = dict(known)
        for f in head:
            if f.id not in confidences:
                kind = items[f.id]["kind"] if f.id in items else None
                confidences[f.id] = confidence_of(f.id, f.ranks, ranked, kind=kind)
        return all(self._weak(confidences[f.id]) for f in head)

    def _weak(self, confidence: float | None) -> bool:
        return confidence is not None and confidence < self.config.weak_below

    # -- retrieval -----------------------------------------------------------------
    def _ready(self, bound: Bound) -> bool:
        return bound.model is not None and self.reader.has(bound.rep)

    def _usable_image(self, image: Any, text: str, use: list[Bound], warnings: list[str]) -> Any:
        if image is None:
            return None
        takers = [b for b in use if b.rep.answers("image")]
        if any(self._ready(b) for b in takers):
            return image
        reasons = [self.unavailable[b.name] for b in takers if b.name in self.unavailable]
        reason = reasons[0] if reasons else "the index has no image embeddings"
        if not text:
            raise InputError(f"cannot search by image: {reason}")
        # The text part still runs, at full weight, and the caller is told why the image
        # part did not.
        warnings.append(f"image search is unavailable: {reason}; results are for the text only")
        return None

    def _retrieve(
        self,
        query: Query,
        use: list[Bound],
        depth: int,
        where: Filter,
    ) -> dict[str, Ranked]:
        parts = {"text"} if query.text else set()
        if query.image is not None:
            parts.add("image")
        if query.item_id is not None:
            parts.add("item")
        ranked: dict[str, Ranked] = {}
        for bound in use:
            if not (parts & bound.rep.accepts) or not self._ready(bound):
                continue
            ctx = SearchContext(
                store=self.store,
                config=self.config,
                model=bound.model,
                part=self.reader.part(bound.name),
                depth=depth,
                where=where,
                index_dir=self.index_dir,
            )
            answer = bound.rep.retrieve(query, ctx)
            if answer is not None:
                if answer.kinds is None:
                    answer.kinds = tuple(bound.rep.kinds)
                ranked[bound.name] = answer
        primary = {b.name for b in use if not b.rep.supplementary}
        if not primary & set(ranked):
            return {}  # supplementary representations only answer beside another one
        return ranked

    # -- resolution ----------------------------------------------------------------
    def _resolve(
        self, fused: Sequence[Fused], ranked: dict[str, Ranked], text: str, offset: int, k: int
    ) -> tuple[list[Hit], bool]:
        """The page of hits at ``offset``, and whether candidates remain past it."""
        hits: list[Hit] = []
        position = 0
        # Resolve in slices: candidates whose file row is not committed yet are skipped,
        # so a concurrent indexing run never surfaces half-written content.
        first = offset + k + 16
        bounds = [(0, first)] + [(s, s + first) for s in range(first, len(fused), first)]
        for start, stop in bounds:
            window = fused[start:stop]
            items, paths = self.reader.items_and_paths([f.id for f in window])
            for n, entry in enumerate(window, start=start):
                item = items.get(entry.id)
                if item is None or item["content_hash"] not in paths:
                    continue
                position += 1
                if position <= offset:
                    continue
                file_paths = sorted(paths[item["content_hash"]])
                confidence = confidence_of(entry.id, entry.ranks, ranked, kind=item["kind"])
                hits.append(
                    Hit(
                        id=item["id"],
                        path=file_paths[0],
                        kind=item["kind"],
                        page=item["page"],
                        chunk=item["chunk"],
                        score=round(float(entry.score), 6),
                        snippet=snippet(item["text"], text) if item["text"] else None,
                        content_hash=item["content_hash"],
                        other_paths=tuple(file_paths[1:]),
                        sources=dict(entry.ranks),
                        confidence=confidence,
                        weak=self._weak(confidence),
                        start=item.get("start"),
                        end=item.get("end"),
                    )
                )
                if len(hits) >= k:
                    return hits, n + 1 < len(fused)
        return hits, False


def check_request(
    request: SearchRequest, *, has_image: bool, known: Sequence[str] | None = None
) -> None:
    """Refuse a malformed request before any model loads or store is read. ``known``:
    the representation names ``retrievers`` may use (None: not checked yet)."""
    if not (request.text or "").strip() and not has_image and request.item_id is None:
        raise InputError("a search needs a text query, an image, or both")
    if request.k < 1:
        raise InputError("k must be at least 1")
    if request.offset < 0:
        raise InputError("offset must not be negative")
    if request.kinds:
        unknown = set(request.kinds) - set(KINDS)
        if unknown:
            raise InputError(f"unknown kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    if request.retrievers is not None:
        if not request.retrievers:
            raise InputError("retrievers must name at least one representation")
        unknown = set(request.retrievers) - set(known) if known is not None else set()
        if unknown:
            raise InputError(
                f"unknown retriever(s) {sorted(unknown)}; this index has {', '.join(known or ())}"
            )


def _pinned_first(fused: list[Fused], ranked: dict[str, Ranked]) -> list[Fused]:
    """Pinned lists' items first, best score first, ties (equal hashes, say) in fused
    order."""
    pinned: dict[str, float] = {}
    for answer in ranked.values():
        if answer.pinned:
            for item_id, score in zip(answer.ids, answer.scores, strict=True):
                pinned[item_id] = max(score, pinned.get(item_id, score))
    if not pinned:
        return fused
    position = {f.id: n for n, f in enumerate(fused)}
    ahead = sorted(
        (f for f in fused if f.id in pinned), key=lambda f: (-pinned[f.id], position[f.id])
    )
    return ahead + [f for f in fused if f.id not in pinned]


__all__ = ["SearchRequest", "Searcher", "check_request"]
