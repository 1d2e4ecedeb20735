"""Video files into segments: shots found on small decoded frames, long shots split, a
few keyframes kept per segment, all in one streaming pass with bounded memory.

Why not PySceneDetect: its detectors need OpenCV (a ~60 MB dependency) for what is here a
mean absolute difference of 48 x 27 frames that FFmpeg's scaler already produced, and its
video readers decode every frame at full resolution into NumPy. Here FFmpeg (through
PyAV) skips non-reference frames where the codec allows, only a few frames per second
are scaled down and compared, and only the frames a segment keeps are converted to
pictures: decoding runs at tens of times real time on two cores.

A window of a video (``start``-``end`` seconds) is scanned independently of the others,
so long videos are cut into pieces that decode in parallel and resume after a crash like
a PDF's pages; a window's edge is always a segment edge. Memory is bounded by one
segment's keyframes, whatever the video's length.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from polylens.errors import CorruptFileError, InputError, MissingExtraError
from polylens.ingest.subtitles import Cue, embedded_cues, read_sidecar, sidecar_paths

log = logging.getLogger(__name__)

SAMPLE_FPS = 4.0
"""Frames compared per second of video: a cut is found within a quarter of a second."""
SMALL_SIZE = (48, 27)
"""The frames compared: enough to tell two shots apart, cheap to scale to."""
CUT_SCORE = 24.0
"""Mean absolute difference (0-255, RGB) between two compared frames that means a cut..."""
CHANGED_SHARE = 0.08
TEXT_CUT_SCORE = 6.0
"""...or, for slides and screens (a white page whose text changes moves the mean little),
this share of pixels changed clearly, with at least this mean difference..."""
CUT_RATIO = 3.0
"""...when it is also this many times the recent median: steady fast motion (a pan, a
crowd) raises the median and so does not cut every frame."""
RECENT = 8
KEYFRAME_OFFSET = 0.25
"""Seconds into a segment for its first keyframe (past a cut's blended frames)."""
KEYFRAME_STEP = 6.0
"""Seconds between a segment's further keyframes: a shot shorter than this is one view,
and the image model's forward pass is half the CPU of indexing a video (bench/video.py,
8 minutes of 720p: 27.6x real time with a second keyframe every 4 s, 32.7x with 6 s)."""
KEYFRAMES = 3
"""Keyframes a segment keeps (pooled into its embedding): first, middle and last ones."""
KEYFRAME_SIDE = 1280
"""Long side of a kept keyframe: on-screen text (slides, screen recordings) stays legible
for OCR; the image model's input is made from it on the same thread."""


Window = tuple[float, float]
"""Seconds [start, end) of a video decoded as one piece."""


@dataclass(frozen=True)
class VideoInfo:
    duration: float
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class SegmentRules:
    """How a window is cut. For very long videos :func:`rules_for` stretches the
    minimum length so the per-video cap holds while the whole video stays covered."""

    min_seconds: float = 1.0
    max_seconds: float = 20.0


@dataclass
class Segment:
    start: float
    end: float
    keyframes: list[Any] = field(default_factory=list)
    """PIL pictures, in time order."""

    @property
    def middle(self) -> Any:
        return self.keyframes[len(self.keyframes) // 2]


def rules_for(duration: float, *, max_seconds: float, max_segments: int) -> SegmentRules:
    """Rules that give a video at most about ``max_segments`` segments."""
    least = duration / max(1, max_segments)
    min_seconds = max(1.0, least)
    return SegmentRules(min_seconds=min_seconds, max_seconds=max(max_seconds, 2 * min_seconds))


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingExtraError("indexing video needs PyAV: pip install av") from exc
    return av


def _open(path: str) -> Any:
    av = _av()
    try:
        return av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise CorruptFileError(f"not a readable video: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '", 1)[0] if text else type(exc).__name__


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        audio = "audio only" if container.streams.audio else "no streams"
        raise CorruptFileError(f"no video stream ({audio})")
    stream = container.streams.video[0]
    codec = stream.codec_context
    if codec is None or not codec.name or codec.name == "none":
        raise CorruptFileError("the video codec is not one this build of FFmpeg decodes")
    return stream


def probe(path: str) -> VideoInfo:
    """What a video holds, without decoding it (raises CorruptFileError with a reason)."""
    with _open(path) as container:
        stream = _video_stream(container)
        duration = _duration(container, stream)
        if duration <= 0:
            raise CorruptFileError("the video has no frames")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise CorruptFileError("the video stream has no picture size")
        return VideoInfo(duration, width, height, stream.codec_context.name)


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def _keyframe_size(width: int, height: int) -> tuple[int, int]:
    """A kept keyframe's size: scaled by FFmpeg while converting, not by PIL after."""
    scale = min(1.0, KEYFRAME_SIDE / max(width, height, 1))
    return max(2, round(width * scale)), max(2, round(height * scale))


class _Cutter:
    """Decides cuts from the compared frames' differences."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.recent: deque[float] = deque(maxlen=RECENT)

    def is_cut(self, small: Any) -> bool:
        import numpy as np

        previous, self.previous = self.previous, small.astype(np.int16)
        if previous is None:
            return False
        difference = np.abs(self.previous - previous)
        score = float(difference.mean())
        median = float(np.median(self.recent)) if self.recent else 0.0
        self.recent.append(score)
        if score < CUT_RATIO * median:
            return False
        if score >= CUT_SCORE:
            return True
        changed = float((difference.max(axis=-1) > 32).mean())
        return score >= TEXT_CUT_SCORE and changed >= CHANGED_SHARE

    def restart(self) -> None:
        self.recent.clear()


class _Keyframes:
    """A segment's keyframes: one at ``KEYFRAME_OFFSET``, then one every
    ``KEYFRAME_STEP`` seconds, thinned to ``KEYFRAMES`` (first, middle, last)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.pictures: list[Any] = []
        self.next_at = start + KEYFRAME_OFFSET

    def wants(self, t: float) -> bool:
        return not self.pictures or t >= self.next_at

    def add(self, t: float, picture: Any) -> None:
        settled = self.start + KEYFRAME_OFFSET
        if len(self.pictures) == 1 and self.pictures[0][0] < settled <= t:
            self.pictures.clear()  # the first frame only stood in for a very short segment
        self.pictures.append((t, picture))
        if t >= settled:
            self.next_at = t + KEYFRAME_STEP
        if len(self.pictures) > KEYFRAMES + 1:
            # keep the first and last, thin the middle: memory stays a few frames
            kept = self.pictures
            self.pictures = [kept[0], *kept[1:-1:2], kept[-1]]

    def chosen(self) -> list[Any]:
        pictures = [p for _, p in self.pictures]
        if len(pictures) <= KEYFRAMES:
            return pictures
        picks = {round(i * (len(pictures) - 1) / (KEYFRAMES - 1)) for i in range(KEYFRAMES)}
        return [pictures[i] for i in sorted(picks)]


def segments(
    path: str, start: float, end: float, rules: SegmentRules, *, fast: bool = True
) -> Iterator[Segment]:
    """The segments of the window [start, end) seconds, in time order.

    ``fast``: let FFmpeg skip frames no other frame refers to (B-frames); cuts are then
    found to the nearest reference frame. Decoding is single-threaded: windows of one
    video decode in parallel on the pipeline's threads, and FFmpeg's own frame threads
    on top spend more CPU on handing frames over than they save on two cores."""
    av = _av()
    with _open(path) as container:
        stream = _video_stream(container)
        codec = stream.codec_context
        codec.thread_count = 1
        if fast:
            codec.skip_frame = "NONREF"
        picture_size = _keyframe_size(codec.width, codec.height)
        time_base = float(stream.time_base or 0) or None
        if start > 0 and time_base:
            container.seek(int(start / time_base), stream=stream, backward=True, any_frame=False)
        cutter = _Cutter()
        current: _Keyframes | None = None
        next_sample = start
        last_t = start
        step = 1.0 / (float(stream.average_rate) if stream.average_rate else 25.0)
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    t = last_t + step
                if t < start - 1e-6:
                    continue
                if t >= end:
                    break
                last_t = t
                if current is None:
                    current = _Keyframes(start)
                if t >= next_sample:
                    next_sample = max(next_sample + 1.0 / SAMPLE_FPS, t)
                    small = frame.to_ndarray(
                        width=SMALL_SIZE[0],
                        height=SMALL_SIZE[1],
                        format="rgb24",
                        interpolation="FAST_BILINEAR",
                    )
                    cut = cutter.is_cut(small)
                    length = t - current.start
                    if (cut and length >= rules.min_seconds) or length >= rules.max_seconds:
                        yield Segment(current.start, t, current.chosen())
                        current = _Keyframes(t)
                        if cut:
                            cutter.restart()
                if current.wants(t):
                    current.add(t, frame.to_image(width=picture_size[0], height=picture_size[1]))
        except av.error.FFmpegError as exc:
            at = f"{int(last_t // 60):02d}:{last_t % 60:04.1f}"
            raise CorruptFileError(f"the video data is damaged at {at}: {_reason(exc)}") from exc
        if current is not None and current.pictures:
            finish = min(end, last_t + step)
            yield Segment(current.start, max(finish, current.start + step), current.chosen())


def windows(duration: float, seconds: float) -> list[tuple[float, float]]:
    """A video cut into decode windows of about ``seconds`` each (the last one open)."""
    count = max(1, math.ceil(duration / seconds - 0.2))  # no sliver of a last window
    edges = [round(i * duration / count, 3) for i in range(count)]
    return [(edges[i], edges[i + 1] if i + 1 < count else math.inf) for i in range(count)]


def keyframe_time(start: float, end: float | None) -> float:
    """The moment that shows a segment: its middle (its first keyframe if it is short)."""
    if end is None or end - start <= 2 * KEYFRAME_OFFSET:
        return start
    return max(start + KEYFRAME_OFFSET, (start + end) / 2)


def frame_at(path: str, seconds: float, *, max_side: int) -> Any:
    """The picture at ``seconds`` (the first frame at or after it): a video hit's thumbnail."""
    av = _av()
    with _open(path) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        time_base = float(stream.time_base or 0) or None
        if time_base:
            container.seek(int(seconds / time_base), stream=stream, backward=True)
        picture = None
        try:
            for frame in container.decode(stream):
                picture = frame
                if frame.time is None or frame.time >= seconds:
                    break
        except av.error.FFmpegError as exc:
            if picture is None:
                raise CorruptFileError(f"cannot decode the video: {_reason(exc)}") from exc
        if picture is None:
            raise InputError(f"no frame at {seconds:.1f} s")
        image = picture.to_image()
        image.thumbnail((max_side, max_side))
        return image


@functools.lru_cache(maxsize=16)
def _sidecar_cues(path: str, size: int, mtime_ns: int) -> tuple[Cue, ...]:
    """A sidecar parsed once for all the windows of its video (keyed by its fingerprint)."""
    return tuple(read_sidecar(path))


def subtitle_cues(path: str, start: float, end: float) -> list[Cue]:
    """Timed text for the window: sidecar ``.srt``/``.vtt`` files next to the video and
    the video's own text subtitle tracks. A broken subtitle file costs its text only."""
    cues: list[Cue] = []
    for sidecar in sidecar_paths(path):
        try:
            st = os.stat(sidecar)
            timed = _sidecar_cues(sidecar, st.st_size, st.st_mtime_ns)
            cues.extend(c for c in timed if c.end > start and c.start < end)
        except (InputError, OSError) as exc:
            log.warning("%s: subtitles not read: %s", sidecar, exc)
    av = _av()
    with _open(path) as container:
        if container.streams.subtitles:
            try:
                cues.extend(embedded_cues(container, start, end))
            except av.error.FFmpegError as exc:
                log.warning("%s: subtitle track not read: %s", path, _reason(exc))
    return cues
