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


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",  # MP4
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ",  # QuickTime
        b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat",  # old QuickTime, no ftyp
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x88matroska",
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm",
        b"RIFF\x00\x10\x00\x00AVI LIST",
        b"\x00\x00\x01\xba\x44\x00\x04\x00",  # MPEG program stream
        bytes([0x47] + [0] * 187) * 5,  # MPEG transport stream
    ],
)
def test_video_containers_are_recognised_by_content(head: bytes) -> None:
    assert sniff(head) == "video"


@pytest.mark.parametrize("brand", [b"heic", b"mif1", b"avif", b"M4A "])
def test_still_and_audio_brands_of_iso_media_are_not_video(brand: bytes) -> None:
    assert sniff(b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00" + brand) != "video"


def test_text_that_spells_a_box_name_is_still_text() -> None:
    assert sniff(b"I'm free to go, said the note.\n") == "text"
    assert sniff(b"typeftyp is not a video\n") == "text"
