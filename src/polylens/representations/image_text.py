"""Image-text embeddings (CLIP, SigLIP): pictures and passages in one space, so a text
query finds photos and pages, and an image query finds pictures and the notes about them.

* text query  -> the text tower's vector against pictures only (text-to-text similarity
  in a CLIP space would drown every text-to-image match)
* image query -> the image's vector against everything
* image + text -> composed (``composed_query``: a weighted sum of both by
  ``image_query_weight``, or a prompt directional vector; see ``composed.py``)
* a stored item -> its own vector ("more like this")
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from polylens.config import IndexConfig
from polylens.encoders.registry import ModelRegistry
from polylens.representations.base import PICTURE_KINDS, Needs, Query, Ranked, SearchContext
from polylens.representations.composed import compose
from polylens.representations.dense import DenseRepresentation
from polylens.representations.frames import embed_pooled
from polylens.store.base import Filter
from polylens.types import KINDS, StageClock, Unit


def vector_row(row_id: str, unit: Unit, vector: Any) -> dict[str, Any]:
    return {
        "id": row_id,
        "item_id": unit.item_id,
        "content_hash": unit.content_hash,
        "kind": unit.kind,
        "vector": vector,
    }


class ImageText(DenseRepresentation):
    name = "image"
    title = "image embeddings"
    kinds = ("image", "page", "text", "video")
    needs = Needs(pixels=True, text=True)
    accepts: ClassVar[frozenset[str]] = frozenset({"text", "image", "item"})
    stored_as = "image vectors"
    modality = "image"
    collection = "vec_image"
    eval_name = "dense-image"
    weight_key = "weight_image"
    model_key = "image_model"
    model_role = "image"

    def load_model(self, registry: ModelRegistry, config: IndexConfig) -> Any:
        name = config.image_model
        return registry.load_image_text(name, device=config.device, batch_size=config.batch_size)

    def prepare(self, model: Any, picture: Any) -> Any:
        prepare = getattr(model, "prepare_image", None)
        return picture if prepare is None else prepare(picture)

    def picture_side(self, model: Any) -> int | None:
        return getattr(model, "input_side", None)

    def wants(self, item: dict[str, Any], config: IndexConfig) -> bool:
        if item["kind"] in PICTURE_KINDS:
            return True
        return config.text_in_image_space and bool(item["text"].strip())

    def encode(
        self, model: Any, units: Sequence[Unit], config: IndexConfig, clock: StageClock
    ) -> list[dict[str, Any]]:
        """One vector per picture (image, page; a video segment's keyframes pooled) and,
        if asked, per passage."""
        rows: list[dict[str, Any]] = []
        pictures = [u for u in units if self.name in u.inputs]
        passages = (
            [u for u in units if u.kind == "text" and u.text.strip()]
            if config.text_in_image_space
            else []
        )
        for group, embed in (
            (
                pictures,
                lambda us: embed_pooled(model.embed_images, [u.inputs[self.name] for u in us]),
            ),
            (passages, lambda us: model.embed_queries([u.text for u in us])),
        ):
            if not group:
                continue
            started = time.perf_counter()
            vectors = embed(group)
            clock.add("encode_image", started)
            rows.extend(vector_row(u.item_id, u, v) for u, v in zip(group, vectors, strict=True))
        return rows

    def retrieve(self, query: Query, ctx: SearchContext) -> Ranked | None:
        model, where = ctx.model, ctx.where
        if query.item_id is not None:
            vector = self.stored_vector(ctx, query.item_id)
            if vector is None:
                return None
        elif query.image is not None:
            vector = model.embed_images([query.image])[0]
            if query.text:
                vector = compose(
                    model,
                    vector,
                    query.text,
                    method=ctx.config.composed_query,
                    image_weight=ctx.config.image_query_weight,
                    strength=ctx.config.pdv_strength,
                )
        elif query.text:
            vector = model.embed_queries([query.text])[0]
            pictures = tuple(
                k for k in (where.kinds if where and where.kinds else KINDS) if k != "text"
            )
            if not pictures:
                return None
            where = Filter(kinds=pictures, content_hashes=where.content_hashes if where else None)
        else:
            return None
        ids, scores = self.nearest(ctx, vector, ctx.depth, where)
        evidence = self.evidence(ctx, vector, scores, where)
        # a text against pictures is one scale, a picture against pictures another
        curve = (
            "image-text" if query.text and query.image is None and not query.item_id else "image"
        )
        weight = self.weight(ctx.config)
        kinds = where.kinds if where is not None else None
        return Ranked(ids, scores, weight=weight, evidence=evidence, curve=curve, kinds=kinds)
