"""Query towers exported to ONNX: a search embeds its query without torch, and gets the
same ranking as through the model itself (real MiniLM from its wheel; tiny CLIP and SigLIP
of the real architectures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polylens.encoders import onnx_queries
from polylens.encoders.onnx_queries import OnnxQueryEncoder, export, read_meta
from polylens.encoders.registry import ModelRegistry
from polylens.engine import open_index

pytestmark = pytest.mark.query_towers

SEARCH_WITHOUT_TORCH = """
import json, sys
from polylens.engine import open_index
with open_index(sys.argv[1], create=False) as idx:
    hits = idx.search(sys.argv[2], k=5, retrievers=["text"])
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"ids": [h.id for h in hits], "scores": [h.score for h in hits], "heavy": heavy}))
"""


@pytest.mark.slow
def test_a_search_embeds_its_query_without_torch(samples_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    corpus = tmp_path / "corpus"
    shutil.copytree(samples_dir / "text", corpus / "text")
    shutil.copytree(samples_dir / "pdf", corpus / "pdf")
    with open_index(index, image_model="none", ocr=False) as idx:
        assert idx.add([corpus]).failed == 0
        assert idx.status().query_towers["text"] > 50_000_000  # MiniLM's ~87 MiB
    meta = read_meta(index / "query-encoders" / "text")
    assert meta is not None and meta.min_cosine >= 0.9999 and meta.dim == 384
    query = "which currency codes did the euro replace"
    run = subprocess.run(
        [sys.executable, "-c", SEARCH_WITHOUT_TORCH, str(index), query],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    onnx = json.loads(run.stdout.strip().splitlines()[-1])
    assert onnx["heavy"] == []  # nothing of torch was imported
    # the same search through the model itself: the same hits, the same scores
    shutil.move(index / "query-encoders", tmp_path / "hidden")
    with open_index(index, create=False) as idx:
        hits = idx.search(query, k=5, retrievers=["text"])
    assert [h.id for h in hits] == onnx["ids"]
    np.testing.assert_allclose([h.score for h in hits], onnx["scores"], atol=1e-4)
    # an index that drops the text representation drops its query tower too
    shutil.move(tmp_path / "hidden", index / "query-encoders")
    with open_index(index, create=False, without=("text",)) as idx:
        idx.add([corpus])
    assert not (index / "query-encoders" / "text").exists()


@pytest.mark.parametrize("model", ["tiny_clip_dir", "tiny_siglip_dir"])
def test_image_text_towers_export_and_the_rest_goes_to_the_model(
    tmp_path: Path, model: str, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(model)
    encoder = ModelRegistry().load_image_text(str(path), device="cpu", batch_size=4)
    assert export(encoder, tmp_path / "image", "local:test")
    meta = read_meta(tmp_path / "image")
    assert meta is not None and meta.pad_to_max == (model == "tiny_siglip_dir")
    loads = []
    front = OnnxQueryEncoder(tmp_path / "image", meta, lambda: loads.append(1) or encoder)
    queries = ["a red square", "two cats on a sofa", "x"]
    np.testing.assert_allclose(
        front.embed_queries(queries), encoder.embed_queries(queries), atol=1e-4
    )
    assert loads == []  # queries never needed the model
    from PIL import Image

    picture = Image.new("RGB", (64, 48), (200, 30, 30))
    np.testing.assert_allclose(
        front.embed_images([picture]), encoder.embed_images([picture]), atol=1e-6
    )
    assert loads == [1]  # a picture did, once


def test_an_export_that_disagrees_with_its_model_is_not_kept(
    tmp_path: Path, tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = ModelRegistry().load_image_text(str(tiny_clip_dir), device="cpu", batch_size=4)
    monkeypatch.setattr(onnx_queries, "MIN_COSINE", 1.1)  # nothing can agree this well
    assert not export(encoder, tmp_path / "image", "local:test")
    assert not (tmp_path / "image").exists() and list(tmp_path.iterdir()) == []
