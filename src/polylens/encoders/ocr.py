"""OCR with rapidocr-onnxruntime (PP-OCR models shipped in the wheel).

Most photos hold no text, and full-resolution text detection is the expensive part of
OCR on them. So a cheap presence pass runs detection on a small copy first; only images
where it finds text get detection and recognition at full resolution.

PP-OCR's detector is configured to *enlarge* inputs until their short side is 736 px
(``limit_type: min``), which would undo the small copy (a 640x480 thumbnail was
detected at 981x736, costing more than the CLIP forward pass). The presence pass
therefore sets its thread's detector to a short side of ``PRESENCE_MIN_SIDE`` for the
call: small enough to be cheap, large enough that detection still sees lines of text in
skimage's ``text.png`` (at "at most 640 px" it did not).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from polylens._lazy import import_or_raise

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

PRESENCE_SIDE = 480
PRESENCE_MIN_SIDE = 360
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

    def _engine(self) -> Any:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._module.RapidOCR(
                intra_op_num_threads=self.threads_per_engine,
                inter_op_num_threads=self.threads_per_engine,
            )
            self._local.engine = engine
        return engine

    @staticmethod
    def _to_bgr(image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.convert("RGB"))
        return np.ascontiguousarray(rgb[:, :, ::-1])

    def has_text(self, image: Image.Image) -> bool:
        """Detection only, on a copy no larger than ``presence_side``."""
        small = image
        if max(image.size) > self.presence_side:
            small = image.copy()
            small.thumbnail((self.presence_side, self.presence_side))
        engine = self._engine()
        detector = engine.text_det  # this thread's own, so changing it here is safe
        saved = detector.limit_type, detector.limit_side_len
        detector.limit_type, detector.limit_side_len = "min", PRESENCE_MIN_SIDE
        try:
            boxes, _ = engine(self._to_bgr(small), use_det=True, use_cls=False, use_rec=False)
        finally:
            detector.limit_type, detector.limit_side_len = saved
        return bool(boxes)

    def read(self, image: Image.Image, *, check_presence: bool = True) -> str:
        """Recognised text in reading order, one detected line per output line."""
        if check_presence and not self.has_text(image):
            return ""
        result, _ = self._engine()(self._to_bgr(image), use_det=True, use_cls=False, use_rec=True)
        if not result:
            return ""
        lines = []
        for entry in result:
            box, text, score = entry[0], entry[1], float(entry[2])
            if score >= MIN_SCORE and sum(ch.isalnum() for ch in text) >= 2:
                top = min(point[1] for point in box)
                left = min(point[0] for point in box)
                lines.append((top, left, text.strip()))
        return _reading_order(lines)


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
