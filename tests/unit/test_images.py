from __future__ import annotations

import io

import numpy as np
import pytest
from _files import png_header_only
from PIL import Image

from polylens.errors import CorruptFileError
from polylens.ingest.images import load_image

LIMITS = dict(max_pixels=50_000_000, max_side=256)


def _jpeg_with_orientation(orientation: int) -> bytes:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_exif_orientation_is_applied() -> None:
    upright = load_image(_jpeg_with_orientation(1), **LIMITS)
    rotated = load_image(_jpeg_with_orientation(6), **LIMITS)  # rotate 90 CW on display
    assert upright.size == (40, 20)
    assert rotated.size == (20, 40)


def test_large_images_are_downscaled() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (2000, 1000)).save(buf, format="JPEG")
    image = load_image(buf.getvalue(), **LIMITS)
    assert max(image.size) == 256 and image.mode == "RGB"


def test_decompression_bomb_is_refused() -> None:
    with pytest.raises(CorruptFileError, match="bomb"):
        load_image(png_header_only(50_000, 50_000), **LIMITS)


@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "RGBA", "I;16", "L", "1"])
def test_unusual_modes_become_rgb(mode: str) -> None:
    if mode == "I;16":
        image = Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    else:
        image = Image.new(mode, (64, 64))
    buf = io.BytesIO()
    image.save(buf, format="TIFF" if mode in ("CMYK", "I;16") else "PNG")
    out = load_image(buf.getvalue(), **LIMITS)
    assert out.mode == "RGB" and out.size == (64, 64)


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), (i * 20, 0, 0)) for i in range(10)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue(), **LIMITS)
    assert out.getpixel((0, 0))[0] < 10


def test_truncated_file_is_a_corrupt_file_error() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, format="PNG")
    with pytest.raises(CorruptFileError):
        load_image(buf.getvalue()[:40], **LIMITS)
