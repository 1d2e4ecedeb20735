"""Turn one file (or a range of PDF pages) into indexable units.

This is the *decode* stage: it runs on worker threads ahead of the encoders, so it must
only read files, decode, render and OCR, never touch the store or the models' state.
Each representation that reads pixels turns the picture into its own input here
(``prepare``, thread-safe: the image-text model's resize and crop, a perceptual hash), so
the encoder thread only runs models, and each unit waiting for its batch holds small
inputs instead of a decoded picture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from polylens.config import IndexConfig
from polylens.encoders.ocr import RapidOcr
from polylens.errors import CorruptFileError, InputError, PolylensError
from polylens.ingest.images import load_image, source_size
from polylens.ingest.pdf import PdfFile, has_text_layer
from polylens.ingest.subtitles import text_between
from polylens.ingest.text import decode_text, split_passages
from polylens.ingest.video import (
    SegmentRules,
    VideoInfo,
    Window,
    probe,
    rules_for,
    segments,
    subtitle_cues,
    windows,
)
from polylens.representations.frames import Frames
from polylens.types import StageClock, Unit

log = logging.getLogger(__name__)

MODEL_DECODE_SIDE = 512
"""Short side an image is decoded at when only the image model needs it (CLIP/SigLIP inputs
are 224-384 px; some headroom keeps the model's own resize a downscale)."""

MAX_TEXT_BYTES = 64 << 20
VIDEO_WINDOW_SECONDS = 60.0
"""A video is decoded in windows this long: pieces that decode in parallel, bound the
units waiting for the encoder, and let a killed run resume near where it stopped."""
CLIP_RENDER_SIDE = 1024
OCR_RENDER_SIDE = 2400


def decode_side(needed: int | None, *, ocr: bool) -> int:
    """The short side a photo is decoded at: what its representations need when they say
    (a CLIP B/32 reads 224 px: a 12-megapixel JPEG then decodes at an eighth of its size),
    never less than what OCR's presence pass reads when OCR runs."""
    if needed is None or ocr:
        return max(MODEL_DECODE_SIDE, needed or 0)
    return needed


def item_id(content_hash: str, kind: str, number: int | None) -> str:
    """Deterministic ids, so a re-run after a crash skips what is already committed (a
    video segment is numbered by its start in milliseconds)."""
    if kind == "image":
        return f"{content_hash}:i"
    if kind == "page":
        return f"{content_hash}:p{number}"
    if kind == "video":
        return f"{content_hash}:v{number}"
    return f"{content_hash}:t{number}"


class UnitMaker:
    def __init__(
        self,
        config: IndexConfig,
        *,
        ocr: RapidOcr | None,
        clock: StageClock,
        speech: Any = None,
        prepare: dict[str, Callable[[Any], Any]] | None = None,
        video_reps: Sequence[str] | None = None,
        picture_side: int | None = None,
    ) -> None:
        self.config = config
        # by the index's setting, not by whether this pass runs OCR: a back-fill (no OCR)
        # must compute the vectors a run of this index computes
        self.decode_side = decode_side(picture_side, ocr=config.ocr)
        """Short side a photo is decoded at (JPEG: at reduced scale where it allows)."""
        self.prepare = prepare or {}
        self.want_images = bool(self.prepare)
        self.prepare_frames = {
            name: fn for name, fn in self.prepare.items() if name in (video_reps or ())
        }
        """Those that pool a video segment's keyframes."""
        self.ocr = ocr
        self.speech = speech
        """Transcribes a video's sound track (SpeechRecognizer), or None."""
        self.clock = clock

    def _inputs(self, image: Any) -> dict[str, Any]:
        """Each pixel-reading representation's input made from ``image``."""
        if image is None:
            return {}
        started = time.perf_counter()
        inputs = {name: prepare(image) for name, prepare in self.prepare.items()}
        self.clock.add("resize", started)
        return inputs

    def _load(self, path: str, *, reduced: bool) -> Any:
        return load_image(
            path,
            max_pixels=self.config.max_image_pixels,
            max_side=self.config.max_image_side,
            min_side=self.decode_side if reduced else None,
        )

    def _full_picture(self, path: str, reduced: Any) -> Any:
        """The picture at full resolution (up to ``max_image_side``) for OCR."""
        width, height = source_size(reduced)
        if max(reduced.size) >= min(max(width, height), self.config.max_image_side):
            return reduced  # not reduced, or already as large as OCR would ever see it
        try:
            return self._load(path, reduced=False)
        except (CorruptFileError, InputError):
            return reduced  # it decoded once; a second read failing is not worth a unit

    def pdf_page_count(self, path: str) -> int:
        with PdfFile(path, max_pages=self.config.max_pdf_pages) as pdf:
            return pdf.page_count

    def image(self, path: str, content_hash: str) -> list[Unit]:
        started = time.perf_counter()
        # The model and OCR's presence pass need only a small picture; the full one is
        # decoded again only for the few where OCR finds text.
        image = self._load(path, reduced=True)
        self.clock.add("decode", started)
        text = ""
        if self.ocr is not None:
            started = time.perf_counter()
            text = self.ocr.read(image, full_image=lambda: self._full_picture(path, image))
            self.clock.add("ocr", started)
        width, height = source_size(image)
        return [
            Unit(
                item_id(content_hash, "image", None),
                content_hash,
                "image",
                text=text,
                text_source="ocr" if text else None,
                inputs=self._inputs(image),
                width=width,
                height=height,
            )
        ]

    def pdf_pages(self, path: str, content_hash: str, pages: range, skip: set[str]) -> list[Unit]:
        units: list[Unit] = []
        started = time.perf_counter()
        with PdfFile(path, max_pages=self.config.max_pdf_pages) as pdf:
            for index in pages:
                number = index + 1
                uid = item_id(content_hash, "page", number)
                if uid in skip:
                    continue
                try:
                    text = pdf.page_text(index)
                    source = "layer"
                    image = None
                    if not has_text_layer(text) and self.ocr is not None:
                        scan = pdf.render(
                            index, dpi=self.config.pdf_ocr_dpi, max_side=OCR_RENDER_SIDE
                        )
                        self.clock.add("decode", started)
                        started = time.perf_counter()
                        # A page with no text layer is a scan, which nearly always holds
                        # text too fine for the presence pass's small copy.
                        text = self.ocr.read(scan, check_presence=False)
                        self.clock.add("ocr", started)
                        started = time.perf_counter()
                        source = "ocr"
                        if self.want_images:
                            scan.thumbnail((CLIP_RENDER_SIDE, CLIP_RENDER_SIDE))
                            image = scan
                    elif self.want_images:
                        image = pdf.render(
                            index, dpi=self.config.pdf_render_dpi, max_side=CLIP_RENDER_SIDE
                        )
                except CorruptFileError as exc:
                    # One broken page must not cost the document its good pages.
                    log.warning("%s: skipping page %d: %s", path, number, exc)
                    continue
                self.clock.add("decode", started)
                units.append(
                    Unit(
                        uid,
                        content_hash,
                        "page",
                        page=number,
                        text=text,
                        text_source=source if text else None,
                        inputs=self._inputs(image),
                        width=image.size[0] if image is not None else None,
                        height=image.size[1] if image is not None else None,
                    )
                )
                started = time.perf_counter()
        self.clock.add("decode", started)
        return units

    def video_windows(self, path: str) -> tuple[VideoInfo, SegmentRules, list[Window]]:
        """The video's facts, how to cut it, and its decode windows (raises with a reason)."""
        info = probe(path)
        rules = rules_for(
            info.duration,
            max_seconds=self.config.video_max_segment,
            max_segments=self.config.video_max_segments,
        )
        return info, rules, windows(info.duration, VIDEO_WINDOW_SECONDS)

    def video(
        self, path: str, content_hash: str, info: VideoInfo, rules: SegmentRules, window: Window
    ) -> list[Unit]:
        """The segments of one window of a video, each with its keyframes' inputs, OCR of
        its middle keyframe and the subtitles spoken over it."""
        start, end = window
        started = time.perf_counter()
        cues = subtitle_cues(path, start, end)
        spoken = []
        if self.speech is not None:
            self.clock.add("decode", started)
            started = time.perf_counter()
            spoken = self.speech.transcribe(path, start, min(end, info.duration + 1.0))
            self.clock.add("speech", started)
            started = time.perf_counter()
        units: list[Unit] = []
        for segment in segments(path, start, end, rules):
            ocr_text = ""
            if self.ocr is not None:
                self.clock.add("decode", started)
                started = time.perf_counter()
                ocr_text = self.ocr.read(segment.middle)
                self.clock.add("ocr", started)
                started = time.perf_counter()
            said = text_between(cues, segment.start, segment.end)
            heard = text_between(spoken, segment.start, segment.end)
            parts = (("subtitles", said), ("speech", heard), ("ocr", ocr_text))
            text = "\n".join(t for _, t in parts if t)
            source = "+".join(name for name, t in parts if t)
            self.clock.add("decode", started)
            units.append(
                Unit(
                    item_id(content_hash, "video", round(segment.start * 1000)),
                    content_hash,
                    "video",
                    text=text,
                    text_source=source or None,
                    inputs=self._frame_inputs(segment.keyframes),
                    width=info.width,
                    height=info.height,
                    start=round(segment.start, 3),
                    end=round(segment.end, 3),
                )
            )
            started = time.perf_counter()
        self.clock.add("decode", started)
        return units

    def _frame_inputs(self, pictures: Sequence[Any]) -> dict[str, Any]:
        started = time.perf_counter()
        inputs = {
            name: Frames(tuple(prepare(p) for p in pictures))
            for name, prepare in self.prepare_frames.items()
        }
        self.clock.add("resize", started)
        return inputs

    def text(self, path: str, content_hash: str, size: int) -> list[Unit]:
        if size > MAX_TEXT_BYTES:
            raise CorruptFileError(
                f"text file is {size:,} bytes, over the {MAX_TEXT_BYTES:,}-byte limit"
            )
        started = time.perf_counter()
        with open(path, "rb") as handle:
            data = handle.read(MAX_TEXT_BYTES + 1)
        passages = split_passages(decode_text(data), self.config.passage_chars)
        self.clock.add("decode", started)
        return [
            Unit(
                item_id(content_hash, "text", n),
                content_hash,
                "text",
                chunk=n,
                text=p,
                text_source="file",
            )
            for n, p in enumerate(passages)
        ]


def reason_of(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    if isinstance(exc, PolylensError):
        return str(exc)
    return f"unexpected error while decoding: {type(exc).__name__}: {exc}"
