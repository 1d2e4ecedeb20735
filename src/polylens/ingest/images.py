"""Decode images safely: bounded pixels, EXIF orientation, early downscale.

Pillow's own bomb check only warns below twice its limit and its limit is a process
global; we check the header size against the index's own limit before any pixel is
decoded, and let JPEG decode at reduced scale (``draft``) when the image is large.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import Any

from polylens._lazy import import_or_raise
from polylens.config import IndexConfig
from polylens.errors import CorruptFileError, InputError


def load_image(
    source: str | Path | bytes, *, max_pixels: int, max_side: int, min_side: int | None = None
):  # -> PIL.Image.Image
    """An RGB image no larger than ``max_side``, upright per its EXIF orientation.

    ``image.info["source_size"]`` is the picture's own (upright) size before any scaling.

    ``min_side``: the caller needs no more than this many pixels on the short side (the
    image model's input, when no OCR will read the picture), so a JPEG is decoded at
    1/2, 1/4 or 1/8 scale straight from its DCT coefficients: several times cheaper than
    decoding it whole and resizing.

    A file that cannot be opened (vanished, no permission) is reported as unreadable
    (``InputError``), not as a corrupt image.
    """
    import_or_raise("PIL", package="pillow")
    from PIL import Image

    if isinstance(source, bytes):
        opened: Any = io.BytesIO(source)
    else:
        try:
            opened = open(source, "rb")  # noqa: SIM115 - closed in the finally below
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        with warnings.catch_warnings():
            # Pillow's own warning fires at its process-global limit (about 89 Mpx), below
            # our default: the index's max_pixels decides, checked from the header below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(opened) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise CorruptFileError("image has no pixels")
                if width * height > max_pixels:
                    raise CorruptFileError(
                        f"image is {width}x{height} = {width * height:,} pixels, over the "
                        f"limit of {max_pixels:,} (decompression bomb guard; raise "
                        "max_image_pixels to accept it)"
                    )
                # Animated GIF/WebP, multi-page TIFF: an opened image is at its first frame,
                # which is the one we use; never walk the frames (there may be thousands).
                if image.format == "JPEG":
                    if min_side is not None and min(width, height) >= 2 * min_side:
                        image.draft(image.mode, (min_side, min_side))
                    elif max(width, height) > 2 * max_side:
                        image.draft(image.mode, (max_side, max_side))
                orientation = _orientation(image)
                image.load()
                # Shrink before any mode conversion or rotation, so a big-but-legal image
                # never exists at full size in a wider mode (RGBA, float) or twice.
                if max(image.size) > max_side:
                    image = _downscale(image, max_side)
                if orientation is not None:
                    image = image.transpose(orientation)
                if image.mode != "RGB":
                    image = _to_rgb(image)
                if image.readonly:
                    image = image.copy()
                swapped = orientation is not None and orientation.name in _QUARTER_TURNS
                image.info["source_size"] = (height, width) if swapped else (width, height)
                return image
    except CorruptFileError:
        raise
    except Image.DecompressionBombError as exc:
        raise CorruptFileError(f"decompression bomb refused: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise CorruptFileError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise CorruptFileError(f"cannot decode image: {exc}") from exc
    except MemoryError as exc:  # pragma: no cover - depends on the machine
        raise CorruptFileError(f"image too large to decode: {exc}") from exc
    finally:
        opened.close()


def source_size(image) -> tuple[int, int]:  # PIL.Image -> (width, height)
    """The size of the picture ``image`` was decoded from (see ``load_image``)."""
    return image.info.get("source_size", image.size)


def _orientation(image):  # -> PIL.Image.Transpose | None
    """The transpose that makes the image upright per its EXIF orientation tag."""
    from PIL import Image

    try:
        value = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not fail a good image
        return None
    return {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(value)


_QUARTER_TURNS = {"ROTATE_90", "ROTATE_270", "TRANSPOSE", "TRANSVERSE"}


def _downscale(image, max_side: int):  # PIL.Image -> PIL.Image
    from PIL import Image

    if image.mode == "1":
        image = image.convert("L")
    elif image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    width, height = image.size
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if image.mode.startswith("I;16"):
        return image.resize(size, Image.Resampling.BICUBIC)  # no reduce() for 16-bit modes
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _to_rgb(image):  # PIL.Image -> PIL.Image
    """Flatten alpha on white (documents, screenshots) and map 16-bit, CMYK, palette."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        high = arr.max() or 1.0
        image = Image.fromarray((arr / high * 255.0).astype("uint8"), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def read_query_image(
    image: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = IndexConfig.max_image_pixels,
    max_side: int = IndexConfig.max_image_side,
) -> Any:
    """A query image (a path or bytes) as a picture; every error names the file."""
    source = image if isinstance(image, bytes) else os.fspath(image)
    shown = "the query image" if isinstance(source, bytes) else f"query image {source}"
    if isinstance(source, str) and not os.path.isfile(source):
        reason = "is a directory" if os.path.isdir(source) else "not found"
        raise InputError(f"{shown}: {reason}")
    try:
        return load_image(source, max_pixels=max_pixels, max_side=max_side)
    except Exception as exc:  # noqa: BLE001 - every decode failure is bad input
        raise InputError(f"{shown}: {exc}") from exc
