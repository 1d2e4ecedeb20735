"""OCR with rapidocr-onnxruntime (PP-OCR models shipped in the wheel).

Most photos hold no text, and full-resolution OCR of a photo costs several CLIP forward
passes. So each image goes through cheap steps first and stops at the first "no":

1. *Presence*: PP-OCR's text detector on a small copy (``presence_side`` px on the long
   side: the index setting ``ocr_presence_side``), fed to the network directly
   (rapidocr's own pre-processing would enlarge it to a 736-px short side and normalise
   in float64).
2. *Check*: the recogniser reads the few largest boxes found, cut from the full picture.
   Detectors fire on textures (bricks, leaves, cell walls); a box that reads as nothing
   ends the work for that photo at the cost of a few small crops.
3. Only then detection and recognition of the whole picture at full resolution.

Pictures that look like documents or screenshots (a flat, uniform background with
high-contrast marks) get the presence pass on a larger copy (``DOCUMENT_SIDE``): their
text is small relative to the picture.

The presence size trades recall of small text for speed; ``bench/ocr_presence.py``
measures both (text heights as a share of the short side, and time per photo).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.ocr_pages import PageReader, crop_lines
from polylens.encoders.respace import respace_line

if TYPE_CHECKING:
    from PIL import Image

PRESENCE_SIDE = 320
DOCUMENT_SIDE = 1024
NEARLY_FLAT = 0.86
"""Share of background pixels above which some strong contrast (not most) makes a page."""
CHECK_BOXES = 4
"""Largest presence boxes the check step tries to read."""
MIN_SCORE = 0.5


class RapidOcr:
    """Thread-safe by construction: each thread gets its own onnxruntime sessions."""

    name = "rapidocr-onnxruntime"

    def __init__(self, *, presence_side: int = PRESENCE_SIDE, threads_per_engine: int = 1) -> None:
        self._module = import_or_raise("rapidocr_onnxruntime", package="rapidocr-onnxruntime")
        self._local = threading.local()
        self.presence_side = presence_side
        # Parallelism comes from one engine per decode thread; more threads inside each
        # engine would only oversubscribe the cores.
        self.threads_per_engine = threads_per_engine

    def _engine(self) -> PageReader:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._local.engine = PageReader(self.threads_per_engine)
        return engine

    @staticmethod
    def _to_bgr(image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.convert("RGB"))
        return np.ascontiguousarray(rgb[:, :, ::-1])

    def text_boxes(self, image: Image.Image, *, side: int | None = None) -> np.ndarray:
        """Quadrilaterals (n, 4, 2) where the detector sees text on a copy of ``image``
        whose long side is ``side`` (default ``presence_side``), in ``image``'s pixels."""
        from PIL import Image as PILImage

        engine = self._engine()
        side = side or self.presence_side
        width, height = image.size
        scale = side / max(width, height)
        # The network needs multiples of 32.
        net_w = max(32, round(width * scale / 32) * 32)
        net_h = max(32, round(height * scale / 32) * 32)
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        # BOX (area average) is cheaper than bilinear and still uses every source pixel.
        shrinking = net_w < width and net_h < height
        resample = PILImage.Resampling.BOX if shrinking else PILImage.Resampling.BILINEAR
        small = rgb.resize((net_w, net_h), resample)
        probability = engine.probability(np.asarray(small)[:, :, ::-1])
        boxes, _scores = engine.boxes_from_map(probability, (height, width))
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4, 2)

    def readable(self, image: Image.Image, boxes: np.ndarray) -> bool:
        """Whether any of the largest ``boxes`` reads as text (>= 2 letters or digits)."""
        if len(boxes) == 0:
            return False
        engine = self._engine()
        edges = np.linalg.norm(boxes - np.roll(boxes, -1, axis=1), axis=2)
        areas = edges[:, 0] * edges[:, 1]
        areas[(edges[:, 0] < 2) | (edges[:, 1] < 2)] = 0  # too thin to cut out
        order = [i for i in np.argsort(-areas)[:CHECK_BOXES] if areas[i] > 0]
        if not order:
            return False
        largest = boxes[order]
        results = engine.recognise(crop_lines(self._to_bgr(image), largest))
        return any(_is_text(text, float(score)) for text, score in results)

    def has_text(
        self,
        image: Image.Image,
        *,
        full: Callable[[], Image.Image] | None = None,
        side: int | None = None,
    ) -> bool:
        """Presence and check steps: detection on a small copy of ``image`` (long side
        ``side``, default ``presence_side``), then reading the largest boxes cut from the
        picture ``full`` gives (default: ``image``), asked for only when boxes were found."""
        boxes = self.text_boxes(image, side=side)
        if len(boxes) == 0:
            return False
        target = image if full is None else full()
        if target.size != image.size:
            boxes = boxes * np.array(
                [target.size[0] / image.size[0], target.size[1] / image.size[1]], np.float32
            )
        return self.readable(target, boxes)

    def read(
        self,
        image: Image.Image,
        *,
        check_presence: bool = True,
        full_image: Callable[[], Image.Image] | None = None,
    ) -> str:
        """Recognised text in reading order, one detected line per output line.

        ``image`` may be a reduced decode of the picture; ``full_image`` then gives the
        full-resolution one, decoded only when the cheap steps found text.
        """
        full: Image.Image | None = None

        def full_picture() -> Image.Image:
            nonlocal full
            if full is None:
                full = full_image() if full_image is not None else image
            return full

        # A page without a text layer, or a picture that looks like one, is read as a
        # document: detected at its own size, lines recognised 44 px tall (ocr_pages).
        document = True
        if check_presence:
            document = looks_like_document(image)
            # enlarged when smaller: the glyphs of a page rendered small are a few pixels
            # tall, under what the detector sees
            side = DOCUMENT_SIDE if document else None
            if not self.has_text(image, full=full_picture, side=side):
                return ""
        lines = []
        for box, text, score in self._engine()(self._to_bgr(full_picture()), document=document):
            if _is_text(text, score):
                top = float(box[:, 1].min())
                left = float(box[:, 0].min())
                lines.append((top, left, respace_line(text.strip())))
        return _reading_order(lines)


def _is_text(text: str, score: float) -> bool:
    return score >= MIN_SCORE and sum(ch.isalnum() for ch in text) >= 2


def looks_like_document(image: Image.Image) -> bool:
    """A flat background covering much of the picture, and most other pixels in strong
    contrast with it: pages, scans, screenshots, slides, line drawings.

    Measured (``bench/ocr_presence.py``): see ``bench/results/ocr_presence.json`` for how
    often it fires on rendered pages of Debian's TeX manuals and on the ingest bench's
    photos.
    """
    gray = np.asarray(image.convert("L"), dtype=np.int16)[::2, ::2]
    if gray.size == 0:
        return False
    background = int(np.bincount(gray.ravel(), minlength=256).argmax())
    distance = np.abs(gray - background)
    foreground = distance > 8
    flat_share = 1.0 - float(foreground.mean())
    if flat_share < 0.7:  # rendered pages measured 0.84-0.97; a silhouette photo 0.55-0.64
        return False
    strong = float((distance > 96).sum()) / max(1, int(foreground.sum()))
    if NEARLY_FLAT <= flat_share <= 0.995:  # with some marks: a blank picture is not a page
        # A page rendered small (a 360 x 500 thumbnail): its glyphs are thinner than a
        # pixel, so antialiasing leaves most of them grey (strong contrast 0.15-0.31 at
        # 0.6x on euro.pdf and booktabs.pdf, 0.10-0.30 at 0.5x) while the page stays
        # 0.86-0.93 background. Flat photos (microscopy, the moon: crops up to 0.97 flat)
        # reach 0.12 (a corner of moon.png); bench/ocr_presence.py's photos 0.00-0.03.
        return strong >= 0.14
    return strong >= 0.3


def _reading_order(lines: list[tuple[float, float, str]]) -> str:
    """Group boxes into rows by their top edge, then left to right."""
    if not lines:
        return ""
    lines.sort()
    rows: list[list[tuple[float, float, str]]] = []
    for line in lines:
        if rows and abs(rows[-1][0][0] - line[0]) < 8:
            rows[-1].append(line)
        else:
            rows.append([line])
    return "\n".join(" ".join(t for _, _, t in sorted(row, key=lambda x: x[1])) for row in rows)
