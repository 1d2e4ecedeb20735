"""The document/screenshot test that decides whether OCR's presence pass runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from polylens.encoders.ocr import looks_like_document


def _page(background: tuple[int, int, int], ink: tuple[int, int, int]) -> Image.Image:
    page = Image.new("RGB", (1240, 1754), background)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    for row in range(60):
        draw.text(
            (110, 120 + row * 26),
            "The quick brown fox jumps over the lazy dog " * 2,
            fill=ink,
            font=font,
        )
    return page


def _screenshot() -> Image.Image:
    shot = Image.new("RGB", (1920, 1080), (250, 250, 250))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, 1920, 40), fill=(60, 90, 160))
    font = ImageFont.load_default(size=14)
    for row in range(40):
        draw.text(
            (280, 60 + row * 24),
            f"def handler_{row}(request): return render(request)",
            fill=(30, 30, 30),
            font=font,
        )
    return shot


@pytest.mark.parametrize(
    "picture",
    [
        _page((255, 255, 255), (0, 0, 0)),
        _page((250, 248, 240), (40, 40, 60)),
        _screenshot(),
    ],
    ids=["white page", "cream page", "screenshot"],
)
def test_documents_and_screenshots_skip_the_presence_pass(picture: Image.Image) -> None:
    assert looks_like_document(picture)


@pytest.mark.parametrize(
    "name",
    [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "rocket.jpg",
        "moon.png",
        "hubble_deep_field.jpg",
    ],
)
def test_photos_get_the_presence_pass(skimage_data: Path, name: str) -> None:
    assert not looks_like_document(Image.open(skimage_data / name))


def test_blank_picture_is_not_a_document() -> None:
    assert not looks_like_document(Image.new("RGB", (200, 100), (255, 255, 255)))


def test_pages_rendered_small_are_documents(samples_dir: Path) -> None:
    """At 0.6x (358 x 506 px) antialiasing leaves the glyphs grey: no strong contrast, but a
    page that is nearly all background is still a page (its OCR then finds the text)."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(samples_dir / "pdf" / "euro.pdf"))
    pages = [pdf[n].render(scale=0.6).to_pil() for n in range(len(pdf))]
    assert all(looks_like_document(page) for page in pages)


@pytest.mark.parametrize(
    ("name", "box"),
    [
        ("moon.png", (0, 0, 170, 170)),
        ("moon.png", (0, 0, 256, 256)),
        ("cell.png", (0, 330, 275, 660)),
    ],
)
def test_flat_photos_are_not_pages(skimage_data: Path, name: str, box: tuple) -> None:
    """Crops of the moon and of a micrograph are 90-98 % one flat tone, like a page
    rendered small, but with next to no strong contrast."""
    assert not looks_like_document(Image.open(skimage_data / name).crop(box))
