"""Decode images safely: bounded pixels, EXIF orientation, early downscale.

Pillow's own bomb check only warns below twice its limit and its limit is a process
global; we check the header size against the index's own limit before any pixel is
decoded, and let JPEG decode at reduced scale (``draft``) when the image is large.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from polylens._lazy import import_or_raise
from polylens.errors import CorruptFileError


def load_image(source: str | Path | bytes, *, max_pixels: int, max_side: int):  # -> PIL.Image.Image
    """An RGB image no larger than ``max_side``, upright per its EXIF orientation."""
    import_or_raise("PIL", package="pillow")
    from PIL import Image, ImageOps

    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
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
                if getattr(image, "n_frames", 1) > 1:
                    image.seek(0)  # animated GIF/WebP, multi-page TIFF: the first frame
                if image.format == "JPEG" and max(width, height) > 2 * max_side:
                    image.draft("RGB", (max_side, max_side))
                image.load()
                image = ImageOps.exif_transpose(image)
                if image.mode not in ("RGB",):
                    image = _to_rgb(image)
                if max(image.size) > max_side:
                    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
                return image.copy() if image.readonly else image
    except CorruptFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CorruptFileError(f"decompression bomb refused: {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise CorruptFileError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptFileError(f"cannot decode image: {exc}") from exc
    except MemoryError as exc:  # pragma: no cover - depends on the machine
        raise CorruptFileError(f"image too large to decode: {exc}") from exc


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
