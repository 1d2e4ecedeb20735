"""Query planning: which retrievers a query runs, fused, then resolved to typed hits.

* text query  -> image-text (CLIP text tower vs image/page vectors), dense text, BM25
* image query -> image -> image
* image + text -> a composed image-text vector (weighted sum of both embeddings), plus
  dense text and BM25 for the text part, weighted by the text's share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polylens.config import IndexConfig
from polylens.encoders.base import ImageTextEncoder, TextEncoder, normalise
from polylens.errors import InputError
from polylens.search.fusion import reciprocal_rank_fusion
from polylens.search.reader import Reader
from polylens.search.snippets import snippet
from polylens.store.base import VEC_IMAGE, VEC_TEXT, Filter
from polylens.types import KINDS, Hit, SearchResults

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchRequest:
    text: str | None = None
    image: Any = None  # PIL image
    k: int = 10
    kinds: tuple[str, ...] | None = None
    offset: int = 0
    retrievers: tuple[str, ...] | None = None
    """Subset of RETRIEVERS to run (None: every one the index supports)."""
    content_hashes: tuple[str, ...] | None = None
    """Restrict results to these contents (how a path-prefix filter reaches the store)."""
    vector: Any = None
    """A stored image-space vector to search by ("more like this")."""
    exclude_ids: tuple[str, ...] = ()


RETRIEVERS = ("image", "text", "bm25")


class Searcher:
    def __init__(
        self,
        reader: Reader,
        config: IndexConfig,
        *,
        image_encoder: ImageTextEncoder | None,
        text_encoder: TextEncoder | None,
        unavailable: dict[str, str] | None = None,
    ) -> None:
        self.reader = reader
        """The store, or the in-memory snapshot of its current version."""
        self.config = config
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.unavailable = unavailable or {}
        """Why a role cannot be searched (by role), for the messages users see."""

    def search(self, request: SearchRequest) -> SearchResults:
        check_request(request, has_image=request.image is not None)
        text = (request.text or "").strip()
        warnings: list[str] = []
        use = frozenset(request.retrievers or RETRIEVERS)
        where = Filter(
            kinds=tuple(request.kinds) if request.kinds else None,
            content_hashes=request.content_hashes,
        )
        wanted = request.k + request.offset
        depth = max(50, 3 * wanted)
        if request.vector is not None:
            ranked = {"image": self.reader.nearest(VEC_IMAGE, request.vector, depth, where)}
            weights = {"image": 1.0}
        else:
            ranked, weights = self._retrieve(text, request.image, depth, where, use, warnings)
        fused = reciprocal_rank_fusion(ranked, weights=weights, k=self.config.rrf_k)
        if request.exclude_ids:
            fused = [f for f in fused if f.id not in request.exclude_ids]
        hits, has_more = self._resolve(fused, text, request.offset, request.k)
        return SearchResults(hits, warnings=warnings, has_more=has_more)

    # -- retrieval -----------------------------------------------------------------
    def _retrieve(
        self,
        text: str,
        image: Image.Image | None,
        depth: int,
        where: Filter | None,
        use: frozenset[str],
        warnings: list[str],
    ) -> tuple[dict[str, list[str]], dict[str, float]]:
        cfg = self.config
        ranked: dict[str, list[str]] = {}
        weights: dict[str, float] = {}
        has_images = (
            "image" in use and self.image_encoder is not None and self.reader.has_vectors(VEC_IMAGE)
        )
        if image is not None and not has_images:
            reason = self.unavailable.get("image") or "the index has no image embeddings"
            if not text:
                raise InputError(f"cannot search by image: {reason}")
            # The text part still runs, at full weight, and the caller is told why the
            # image part did not.
            warnings.append(f"image search is unavailable: {reason}; results are for the text only")
            image = None
        text_share = 1.0 if image is None else 1.0 - cfg.image_query_weight
        if has_images:
            assert self.image_encoder is not None
            vector = None
            if image is not None:
                vector = self.image_encoder.embed_images([image])[0]
                if text:
                    query = self.image_encoder.embed_queries([text])[0]
                    w = cfg.image_query_weight
                    vector = normalise(w * vector + (1.0 - w) * query)[0]
            elif text:
                vector = self.image_encoder.embed_queries([text])[0]
            visual_where = where
            if image is None:
                # A text query in image space looks at pictures only: text-to-text similarity
                # in a CLIP space would drown every text-to-image match.
                allowed = tuple(
                    k for k in (where.kinds if where and where.kinds else KINDS) if k != "text"
                )
                visual_where = Filter(
                    kinds=allowed, content_hashes=where.content_hashes if where else None
                )
                if not allowed:
                    vector = None
            if vector is not None:
                ranked["image"] = self.reader.nearest(VEC_IMAGE, vector, depth, visual_where)
                weights["image"] = cfg.weight_image
        if (
            text
            and "text" in use
            and self.text_encoder is not None
            and self.reader.has_vectors(VEC_TEXT)
        ):
            vector = self.text_encoder.embed_queries([text])[0]
            ranked["text"] = _dedupe(self.reader.nearest(VEC_TEXT, vector, depth * 3, where))[
                :depth
            ]
            weights["text"] = cfg.weight_text * text_share
        if text and "bm25" in use:
            ranked["bm25"] = self.reader.bm25(text, depth, where)
            weights["bm25"] = cfg.weight_bm25 * text_share
        return ranked, weights

    # -- resolution ----------------------------------------------------------------
    def _resolve(
        self, fused: Sequence[Any], text: str, offset: int, k: int
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
                    )
                )
                if len(hits) >= k:
                    return hits, n + 1 < len(fused)
        return hits, False


def check_request(request: SearchRequest, *, has_image: bool) -> None:
    """Refuse a malformed request before any model loads or store is read."""
    if not (request.text or "").strip() and not has_image and request.vector is None:
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
        unknown = set(request.retrievers) - set(RETRIEVERS)
        if unknown or not request.retrievers:
            raise InputError(
                f"unknown retriever(s) {sorted(unknown)}; choose from {', '.join(RETRIEVERS)}"
            )


def _dedupe(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


__all__ = ["RETRIEVERS", "SearchRequest", "Searcher", "check_request"]
