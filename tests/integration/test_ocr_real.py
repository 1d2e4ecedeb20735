"""Real OCR (PP-OCR weights shipped in rapidocr-onnxruntime) on real scans from scikit-image."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from polylens.encoders.ocr import RapidOcr
from polylens.engine import open_index

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ocr() -> RapidOcr:
    return RapidOcr()


def test_reads_a_printed_page(ocr: RapidOcr, skimage_data: Path) -> None:
    text = ocr.read(Image.open(skimage_data / "page.png"))
    assert "markers of the coins" in text
    assert len(text.splitlines()) >= 5


def _with_sign(photo: Image.Image, words: str, height_share: float) -> Image.Image:
    """``photo`` with a printed sign whose letters are ``height_share`` of its short side
    (words drawn apart: PP-OCR's recogniser drops narrow gaps between words)."""
    picture = photo.convert("RGB").copy()
    size = max(8, int(height_share * min(picture.size)))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(picture)
    left, top = picture.width // 10, picture.height // 3
    right = left + sum(draw.textlength(w, font=font) + size for w in words.split())
    draw.rectangle(
        (left - size // 2, top - size // 3, right, top + size * 1.4), fill=(250, 250, 245)
    )
    for word in words.split():
        draw.text((left, top), word, fill=(20, 20, 20), font=font)
        left += int(draw.textlength(word, font=font)) + size
    return picture


def test_text_presence_pass(ocr: RapidOcr, skimage_data: Path) -> None:
    assert ocr.has_text(Image.open(skimage_data / "page.png").convert("RGB"))
    astronaut = Image.open(skimage_data / "astronaut.png").convert("RGB")
    assert not ocr.has_text(astronaut)
    assert ocr.read(astronaut) == ""
    sign = _with_sign(astronaut, "EXIT 12 Orchard", 0.06)
    assert ocr.has_text(sign)
    assert "Orchard" in ocr.read(sign)


def test_boxes_that_read_as_nothing_stop_before_full_ocr(
    skimage_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The detector sees "text" in cell.png's membranes (on a 480-px copy); the check step
    # reads the boxes and finds nothing, so the expensive whole-picture pass never runs.
    ocr = RapidOcr(presence_side=480)
    cell = Image.open(skimage_data / "cell.png").convert("RGB")
    assert len(ocr.text_boxes(cell)) > 0
    full_passes = []
    engine = ocr._engine()
    monkeypatch.setattr(type(engine), "__call__", lambda *a, **k: full_passes.append(1) or [])
    assert ocr.read(cell) == ""
    assert full_passes == []
    assert ocr.read(_with_sign(cell, "Cells under glass", 0.06)) == ""  # the spy's answer
    assert full_passes == [1]


def test_text_is_read_from_the_full_picture(skimage_data: Path, tmp_path: Path) -> None:
    # A large JPEG is decoded at reduced scale for the model and the presence pass; the
    # sign, too small to read there, is read from the full-resolution decode.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    photo = Image.open(skimage_data / "chelsea.png").convert("RGB").resize((1600, 1064))
    _with_sign(photo, "Rooms to let Acacia", 0.04).save(corpus / "cat.jpg", quality=92)
    photo.save(corpus / "plain.jpg", quality=92)
    with open_index(tmp_path / "idx", image_model="none", text_model="none", ocr=True) as idx:
        assert idx.add([corpus]).added == 2
        hits = idx.search("Acacia", k=5)
        assert [Path(h.path).name for h in hits] == ["cat.jpg"]
        assert "Acacia" in (hits[0].snippet or "")


def test_scanned_image_and_scanned_pdf_are_searchable(skimage_data: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(skimage_data / "page.png", corpus / "scan.png")
    shutil.copy(skimage_data / "astronaut.png", corpus / "astronaut.png")
    # A PDF with no text layer: one page that is only an image of the scan.
    Image.open(skimage_data / "page.png").convert("RGB").save(
        corpus / "scanned.pdf", resolution=100
    )
    with open_index(tmp_path / "idx", image_model="none", text_model="none", ocr=True) as idx:
        summary = idx.add([corpus])
        assert summary.failed == 0 and summary.added == 3
        hits = idx.search("markers of the coins", k=5)
        found = {(Path(h.path).name, h.kind, h.page) for h in hits}
        assert ("scan.png", "image", None) in found
        assert ("scanned.pdf", "page", 1) in found
        assert all(Path(h.path).name != "astronaut.png" for h in hits)


def test_screenshot_text_too_small_for_the_photo_presence_copy_is_read(ocr: RapidOcr) -> None:
    shot = Image.new("RGB", (1920, 1080), (250, 250, 250))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, 1920, 40), fill=(60, 90, 160))
    font = ImageFont.load_default(size=16)
    for row in range(30):
        draw.text((280, 60 + row * 30), f"Invoice {1000 + row} paid", fill=(20, 20, 20), font=font)
    assert len(ocr.text_boxes(shot)) == 0  # lost at the photo presence size...
    assert "Invoice 1007" in ocr.read(shot)  # ...so pictures like this get a larger copy


def test_the_index_setting_sizes_the_presence_copy(tmp_path: Path) -> None:
    with open_index(
        tmp_path / "idx", image_model="none", text_model="none", ocr_presence_side=480
    ) as idx:
        assert idx._get_ocr().presence_side == 480


def test_degenerate_boxes_are_not_cut_out(ocr: RapidOcr, skimage_data: Path) -> None:
    page = Image.open(skimage_data / "page.png").convert("RGB")
    flat = np.array([[[10, 10], [60, 10], [60, 10.5], [10, 10.5]]], np.float32)
    assert not ocr.readable(page, flat)
    assert not ocr.readable(page, np.zeros((0, 4, 2), np.float32))


def test_a_page_rendered_small_is_read(ocr: RapidOcr, samples_dir: Path) -> None:
    """A 358 x 506 thumbnail of a PDF page (a ViDoRe-sized page image, a low-resolution
    scan): its glyphs are a few pixels tall and grey, yet the page is read."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(samples_dir / "pdf" / "euro.pdf"))
    text = ocr.read(pdf[1].render(scale=0.6).to_pil())
    assert "EUR" in text and "ISO" in text
