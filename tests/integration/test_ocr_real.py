"""Real OCR (PP-OCR weights shipped in rapidocr-onnxruntime) on real scans from scikit-image."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

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


def test_text_presence_pass(ocr: RapidOcr, skimage_data: Path) -> None:
    assert ocr.has_text(Image.open(skimage_data / "page.png").convert("RGB"))
    assert ocr.has_text(Image.open(skimage_data / "text.png").convert("RGB"))
    assert not ocr.has_text(Image.open(skimage_data / "astronaut.png").convert("RGB"))
    assert ocr.read(Image.open(skimage_data / "astronaut.png").convert("RGB")) == ""


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
