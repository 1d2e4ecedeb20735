"""Tiny random CLIP and SigLIP models of the real architectures, loaded the way users load
real ones (a local Hugging Face directory through the registry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polylens.encoders.registry import ModelRegistry
from polylens.engine import open_index


@pytest.fixture(params=["clip", "siglip"])
def model_dir(request: pytest.FixtureRequest, tiny_clip_dir: Path, tiny_siglip_dir: Path) -> Path:
    return tiny_clip_dir if request.param == "clip" else tiny_siglip_dir


def test_loads_from_local_dir_and_embeds_normalised(model_dir: Path) -> None:
    enc = ModelRegistry().load_image_text(str(model_dir), device="auto", batch_size=3)
    assert enc is not None and enc.dim == 32
    images = [Image.new("RGB", (50 + i, 40), (i * 30, 100, 200)) for i in range(7)]
    vecs = enc.embed_images(images)
    assert vecs.shape == (7, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    queries = enc.embed_queries(["a photo of a cat", "dog"])
    assert queries.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)


def test_query_embedding_does_not_depend_on_its_batch(model_dir: Path) -> None:
    """SigLIP pools the last position, so padding must be fixed-length (max_length)."""
    enc = ModelRegistry().load_image_text(str(model_dir), device="cpu", batch_size=8)
    alone = enc.embed_queries(["cat"])[0]
    batched = enc.embed_queries(["cat", "a much longer caption about a dog on a mat"])[0]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_image_search_finds_the_same_image_first(
    model_dir: Path, samples_dir: Path, tmp_path: Path
) -> None:
    with open_index(
        tmp_path / "idx", image_model=str(model_dir), text_model="fake-text", ocr=False
    ) as idx:
        summary = idx.add([samples_dir / "photos"])
        assert summary.added == 5 and summary.failed == 0
        for photo in sorted((samples_dir / "photos").iterdir()):
            hits = idx.search(image=photo, k=2)
            assert hits[0].path == str(photo)
            assert hits[0].sources == {"image": 1, "phash": 1}  # its own copy, by hash too
        composed = idx.search("a cat", image=samples_dir / "photos" / "cat.jpg", k=4)
        assert {h.kind for h in composed} == {"image"}
        assert len(idx.search("cat", k=10, kind="image")) == 5


def test_index_records_the_model_and_reopens_with_it(tiny_clip_dir: Path, tmp_path: Path) -> None:
    import json

    with open_index(
        tmp_path / "idx", image_model=str(tiny_clip_dir), text_model="none", ocr=False
    ) as idx:
        idx.add([Path(__file__).parents[2] / "samples" / "photos"])
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["representations"]["image"]["resolved"] == f"local:{tiny_clip_dir.resolve()}"
    assert meta["representations"]["image"]["dim"] == 32
    with open_index(tmp_path / "idx") as idx:  # no model named: the recorded one is used
        assert idx.config.image_model == str(tiny_clip_dir)
        assert idx.search(image=Path(__file__).parents[2] / "samples" / "photos" / "cat.jpg", k=1)


@pytest.mark.parametrize("method", ["sum", "pdv"])
def test_composed_query_vectors(model_dir: Path, method: str) -> None:
    """Both ways of composing a picture and words, through the real encoders."""
    from polylens.representations.composed import NEUTRAL_PROMPT, compose

    enc = ModelRegistry().load_image_text(str(model_dir), device="cpu", batch_size=4)
    picture = enc.embed_images([Image.new("RGB", (48, 40), (200, 60, 30))])[0]
    got = compose(enc, picture, "at night", method=method, image_weight=0.3, strength=1.5)
    if method == "sum":
        expected = 0.3 * picture + 0.7 * enc.embed_queries(["at night"])[0]
    else:
        neutral, modified = enc.embed_queries([NEUTRAL_PROMPT, f"{NEUTRAL_PROMPT} at night"])
        expected = picture + 1.5 * (modified - neutral)
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected), atol=1e-5)
    # with no strength, a prompt direction leaves the picture as it is
    still = compose(enc, picture, "at night", method="pdv", image_weight=0.3, strength=0.0)
    np.testing.assert_allclose(still, picture, atol=1e-5)


def test_pdv_composed_search_runs_end_to_end(
    tiny_clip_dir: Path, samples_dir: Path, tmp_path: Path
) -> None:
    settings = dict(image_model=str(tiny_clip_dir), text_model="fake-text", ocr=False)
    with open_index(tmp_path / "idx", **settings) as idx:
        idx.add([samples_dir / "photos"])
    cat = samples_dir / "photos" / "cat.jpg"
    with open_index(tmp_path / "idx", composed_query="pdv", pdv_strength=0.0) as idx:
        # no strength: the picture alone decides the image-space ranking (itself first;
        # the perceptual hash, which would pin it anyway, left out)
        hits = idx.search("at night", image=cat, k=3, kind="image", retrievers=["image"])
        assert hits[0].path == str(cat) and hits[0].sources == {"image": 1}
