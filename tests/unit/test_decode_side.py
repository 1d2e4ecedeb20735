"""Photos are decoded at the short side their representations need (JPEG at reduced scale),
and what that does to the hash of a near-copy is small next to its radius."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from polylens.ingest.images import load_image
from polylens.ingest.units import MODEL_DECODE_SIDE, decode_side
from polylens.representations.base import picture_side
from polylens.representations.hamming import dct_hash
from polylens.representations.phash import NEAR_DISTANCE, PHASH_PICTURE_SIDE


def test_decode_side_follows_the_models_unless_ocr_reads_the_picture() -> None:
    assert decode_side(224, ocr=False) == 224
    assert decode_side(None, ocr=False) == MODEL_DECODE_SIDE  # a model that does not say
    assert decode_side(224, ocr=True) == MODEL_DECODE_SIDE  # OCR's presence pass reads it
    assert decode_side(768, ocr=True) == 768


def _bound(side: int | None, pixels: bool = True) -> SimpleNamespace:
    rep = SimpleNamespace(needs=SimpleNamespace(pixels=pixels), picture_side=lambda m: side)
    return SimpleNamespace(rep=rep, model=None)


def test_the_largest_need_wins_and_an_unknown_one_keeps_the_default() -> None:
    assert picture_side([_bound(224), _bound(128), _bound(None, pixels=False)]) == 224
    assert picture_side([_bound(224), _bound(None)]) is None
    assert picture_side([]) is None


@pytest.fixture
def camera_jpegs(samples_dir: Path, tmp_path: Path) -> list[Path]:
    """The sample photos at a camera's size (3x), saved as JPEG."""
    out = []
    for photo in sorted((samples_dir / "photos").glob("*.jpg")):
        with Image.open(photo) as image:
            big = image.convert("RGB").resize((image.width * 3, image.height * 3), Image.LANCZOS)
        target = tmp_path / photo.name
        big.save(target, quality=90)
        out.append(target)
    assert len(out) >= 4
    return out


@pytest.mark.parametrize("side", [PHASH_PICTURE_SIDE, 224])
def test_a_reduced_decode_keeps_the_hash_within_a_few_bits(
    camera_jpegs: list[Path], side: int
) -> None:
    for path in camera_jpegs:
        full = load_image(path, max_pixels=10**9, max_side=4000, min_side=None)
        reduced = load_image(path, max_pixels=10**9, max_side=4000, min_side=side)
        assert side <= min(reduced.size) < min(full.size) // 2 + 1, (path.name, reduced.size)
        bits = bin((int(dct_hash(full)) ^ int(dct_hash(reduced))) & (2**64 - 1)).count("1")
        assert bits <= NEAR_DISTANCE["image"] // 2, (path.name, side, bits)
