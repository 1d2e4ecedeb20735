"""The fast image preprocessing path must give the tensors transformers' processor gives."""

from __future__ import annotations

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
from PIL import Image  # noqa: E402

from polylens.encoders.clip import FastImagePrep  # noqa: E402

SIZES = [(640, 480), (480, 640), (224, 224), (225, 301), (1000, 233), (100, 80), (31, 500)]


def _photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) % 256], -1)
    noise = rng.integers(0, 60, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def _processors() -> list:
    out = [transformers.CLIPImageProcessorPil()]
    siglip = getattr(transformers, "SiglipImageProcessorPil", None)
    if siglip is not None:
        out.append(siglip())
    return out


@pytest.mark.parametrize("processor", _processors(), ids=lambda p: type(p).__name__)
def test_fast_prep_matches_processor(processor) -> None:
    prep = FastImagePrep.create(processor)
    assert prep is not None
    images = [_photo(w, h, n) for n, (w, h) in enumerate(SIZES)]
    expected = processor(images=images, return_tensors="np")["pixel_values"]
    got = prep.to_pixels([prep.prepare_image(im) for im in images])
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_encoder_fast_path_matches_processor_path(tmp_path) -> None:
    from polylens.encoders.clip import TransformersImageText
    from tests._tiny_models import make_tiny_clip

    encoder = TransformersImageText("tiny", make_tiny_clip(tmp_path / "clip"), device="cpu")
    assert encoder.fast_prep is not None
    images = [_photo(w, h, n) for n, (w, h) in enumerate(SIZES)]
    fast = encoder.embed_images(images)
    ahead = encoder.embed_images([encoder.prepare_image(im) for im in images])
    encoder.fast_prep = None  # the transformers processor path
    slow = encoder.embed_images(images)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(fast, ahead)
