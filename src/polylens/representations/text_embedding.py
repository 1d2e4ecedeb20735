"""Text embeddings (MiniLM, BGE, E5) of every item's text: passages, text layers, OCR.

Texts longer than the model reads at once (PDF pages, dense scans) get one vector per
window (see :mod:`polylens.encoders.windows`) and are scored by their best window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from polylens.config import IndexConfig
from polylens.encoders.registry import ModelRegistry
from polylens.representations.base import Needs, Query, Ranked, SearchContext
from polylens.representations.dense import DenseRepresentation
from polylens.representations.image_text import vector_row
from polylens.types import StageClock, Unit


class TextEmbedding(DenseRepresentation):
    name = "text"
    title = "text embeddings"
    kinds = ("image", "page", "text", "video")
    needs = Needs(text=True)
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    stored_as = "text vectors"
    modality = "text"
    collection = "vec_text"
    eval_name = "dense-text"
    weight_key = "weight_text"
    model_key = "text_model"
    model_role = "text"

    def load_model(self, registry: ModelRegistry, config: IndexConfig) -> Any:
        name = config.text_model
        return registry.load_text(name, device=config.device, batch_size=config.batch_size)

    def encode(
        self, model: Any, units: Sequence[Unit], config: IndexConfig, clock: StageClock
    ) -> list[dict[str, Any]]:
        texts = [
            (unit, n, window)
            for unit in units
            for n, window in enumerate(model.windows(unit.text, config.text_vector_chars))
        ]
        if not texts:
            return []
        started = time.perf_counter()
        vectors = model.embed_documents([t for _, _, t in texts])
        clock.add("encode_text", started)
        return [
            vector_row(f"{unit.item_id}#w{n}", unit, vector)
            for (unit, n, _), vector in zip(texts, vectors, strict=True)
        ]

    def retrieve(self, query: Query, ctx: SearchContext) -> Ranked | None:
        if not query.text:
            return None
        vector = ctx.model.embed_queries([query.text])[0]
        # An item has a vector per window: ask for more rows, keep each item's best.
        ids, scores = self.nearest(ctx, vector, ctx.depth * 3, ctx.where)
        best: dict[str, float] = {}
        for item_id, score in zip(ids, scores, strict=True):
            best.setdefault(item_id, score)
        top = list(best)[: ctx.depth]
        weight = self.weight(ctx.config) * query.text_share
        scores = [best[i] for i in top]
        evidence = self.evidence(ctx, vector, scores, ctx.where)
        return Ranked(top, scores, weight=weight, evidence=evidence, curve="text")
