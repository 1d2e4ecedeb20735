"""A text query end to end at n items: encode (the product's ONNX query encoder) + search +
fuse, warm, in the serving process (``bench/query.py --step e2e``).

The other query steps look the query vector up in a table, so they time the search alone;
this one embeds each query as a one-shot ``polylens search`` or a warm server does: the
CLIP ViT-B/32 text tower (random weights: the same FLOPs as OpenAI's), exported by
``polylens.encoders.onnx_queries.export`` and run by its ``OnnxQueryEncoder``, plugged
into the index through a model registry. Every timed query is a new string, so the
query cache never answers. The synthetic corpus holds image-text vectors and BM25 texts,
not text-embedding (MiniLM) vectors; MiniLM's query encoding is timed beside (ONNX too),
and the sum is printed as what a corpus with both would cost, marked as a sum.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _query_data import DIM
from _query_systems import IMAGE_MODEL, K, bench_registry, latency, polylens_dir

MODES = {
    "fused": {},
    "fused+kind=image": {"kind": "image"},
}


def _towers(work: Path) -> tuple[Any, Any]:
    """(CLIP text tower, MiniLM) as the product's ONNX query encoders, exported once."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _ingest_models import make_hf_clip_b32

    from polylens.encoders.onnx_queries import OnnxQueryEncoder, export, read_meta
    from polylens.encoders.registry import ModelRegistry

    registry = ModelRegistry()
    clip_dir = make_hf_clip_b32(work.parent / "models" / "hf-clip-b32")
    out = []
    for role, name in (("image", str(clip_dir)), ("text", "minilm")):
        folder = work / "e2e-towers" / role
        if read_meta(folder) is None:
            load = registry.load_image_text if role == "image" else registry.load_text
            model = load(name, device="cpu", batch_size=1)
            if not export(model, folder, name):
                raise SystemExit(f"the {role} query tower did not export")
        meta = read_meta(folder)
        assert meta is not None
        out.append(OnnxQueryEncoder(folder, meta, lambda: None))
    clip, minilm = out
    if clip.dim != DIM:
        raise SystemExit(f"CLIP text tower gives {clip.dim}-d vectors, the corpus {DIM}-d")
    return clip, minilm


def measure_e2e(work: Path, n: int, texts: list[str], n_single: int) -> dict[str, Any]:
    from polylens.engine import Index

    clip, minilm = _towers(work)
    index = Index(
        polylens_dir(work, n),
        create=False,
        registry=bench_registry(clip.embed_queries),
        image_model=IMAGE_MODEL,
        text_model="none",
    )
    index.warm()
    for i in range(100):  # sessions, caches, the read model's first touches, every mode
        kind = list(MODES.values())[i % len(MODES)]
        index.search(f"{texts[i % len(texts)]} warmup{i}", k=K, **kind)
    out: dict[str, Any] = {
        "system": "polylens Index.search(text), query encoded by ONNX Runtime",
        "encoder": "CLIP ViT-B/32 text tower, random weights, polylens.encoders.onnx_queries",
        "modes": {},
    }
    count = min(n_single, len(texts))
    for mode, kwargs in MODES.items():
        lat, _ = latency(
            lambda i, mode=mode, kw=kwargs: index.search(f"{texts[i]} {mode}{i}", k=K, **kw),
            count,
        )
        out["modes"][mode] = lat
    encode, _ = latency(lambda i: clip.embed_queries([f"{texts[i]} encode{i}"]), count)
    text_encode, _ = latency(lambda i: minilm.embed_queries([f"{texts[i]} minilm{i}"]), count)
    out["clip_encode_only"] = encode
    out["minilm_encode_only"] = text_encode
    fused = out["modes"]["fused"]["p50_ms"]
    out["with_minilm_p50_ms_sum"] = round(fused + text_encode["p50_ms"], 3)
    out["note"] = (
        "with_minilm_p50_ms_sum adds MiniLM's encode p50 to the fused p50: a sum of parts, "
        "since this corpus has no text-embedding vectors to search"
    )
    index.close()
    return out
