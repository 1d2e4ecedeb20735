from __future__ import annotations

import io

import pytest
from PIL import Image

from polylens.ingest.sniff import sniff


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_images_are_recognised_by_content(fmt: str) -> None:
    assert sniff(_encoded(fmt)[:8192]) == "image"


def test_pdf_header_even_after_junk() -> None:
    assert sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") == "pdf"
    assert sniff(b"\n\n  %PDF-1.4 rest") == "pdf"


def test_text_utf8_latin1_and_cut_multibyte() -> None:
    assert sniff("héllo wörld\n".encode()) == "text"
    assert sniff("naïve café".encode("cp1252")) == "text"
    assert sniff(("x" * 10 + "é").encode()[:-1]) == "text"


def test_binary_and_empty_are_rejected() -> None:
    assert sniff(b"") is None
    assert sniff(b"PK\x03\x04\x14\x00\x00\x00\x08\x00") is None
    assert sniff(bytes(range(256)) * 4) is None
