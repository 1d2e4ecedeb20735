"""Small real videos for the video-ingest tests, built in well under a second each.

Shots are real photos from ``skimage.data`` (or white slides with drawn text), joined by
hard cuts; inside a shot the picture zooms and pans slowly, so consecutive frames differ
a little as in real footage while no cut is detectable. The pictures are deterministic
(no randomness beyond a fixed seed, no network); the encoders' bits may vary slightly from
run to run (x264 threads), far below what the tests' thresholds can see.

The malformed writers make files a real user could have: a download cut off half way,
an empty file, a sound track saved as .mp4, a photo or a note renamed to .mp4, a codec
FFmpeg does not know, and garbage that sniffs as MP4.
"""

from __future__ import annotations

import functools
import random
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from _files import jpeg_bytes
from av.subtitles.subtitle import SubtitleSet
from PIL import Image, ImageDraw, ImageFont

Cue = tuple[float, float, str]  # (start seconds, end seconds, text)

_CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi"}
_DEFAULT_SUBTITLE = {"mp4": "mov_text", "mov": "mov_text", "matroska": "subrip", "webm": "webvtt"}
_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_MS = Fraction(1, 1000)
# The text encoders (mov_text, subrip, webvtt, ass) refuse to open without an ASS header;
# its style is FFmpeg's default (Arial 16, white), so srt/webvtt write no font tags.
_ASS_HEADER = (
    b"[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\n\r\n"
    b"[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, "
    b"OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
    b"Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\r\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,"
    b"10,10,10,0\r\n\r\n[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, "
    b"MarginV, Effect, Text\r\n"
)


@dataclass(frozen=True)
class Shot:
    """``seconds`` of one picture: a ``skimage.data`` name or ``"slide:TEXT"``."""

    seconds: float
    source: str


def shot_boundaries(shots: Sequence[Shot], fps: int) -> list[int]:
    """Frame index where each shot starts, then the total frame count (len(shots) + 1 items).

    Cumulative rounding: shot lengths that are not whole frames never drift the cuts."""
    bounds = [0] + [round(sum(s.seconds for s in shots[: i + 1]) * fps) for i in range(len(shots))]
    if any(b >= e for b, e in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"every shot needs at least one frame at {fps} fps: {shots}")
    return bounds


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if _FONT.exists():
        return ImageFont.truetype(str(_FONT), size)
    return ImageFont.load_default(size=size)


def slide_picture(text: str, width: int, height: int) -> Image.Image:
    """A white slide with ``text`` in large black type, wrapped to fit (OCR reads it at 320x180).

    The font starts at a fifth of the height and shrinks only as far as a tenth (18 px at
    180 px), the size below which OCR models start to miss characters."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    box_w, box_h = width * 0.84, height * 0.8
    for size in range(max(height // 5, 8), max(height // 10, 8) - 1, -1):
        font = _font(size)
        per_line = max(1, int(box_w / (size * 0.6)))
        lines = textwrap.wrap(text, per_line) or [""]
        body = "\n".join(lines)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), body, font=font, spacing=4)
        if right - left <= box_w and bottom - top <= box_h:
            break
    x, y = (width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top
    draw.multiline_text((x, y), body, font=font, fill="black", spacing=4, align="center")
    return image


@functools.lru_cache(maxsize=32)
def _source(source: str, width: int, height: int) -> Image.Image:
    """The shot's picture at the video's aspect ratio (photos centre-cropped, not stretched)."""
    if source.startswith("slide:"):
        return slide_picture(source[len("slide:") :], width, height)
    import skimage.data

    pixels = np.asarray(getattr(skimage.data, source)())
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    image = Image.fromarray(pixels).convert("RGB")
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    return image.crop((round(left), round(top), round(left + crop_w), round(top + crop_h)))


def _frames(shots: Sequence[Shot], width: int, height: int, fps: int) -> Iterator[np.ndarray]:
    """Every frame: a slow zoom-in (at most 3 %/s, 8 % in all) drifting up and left."""
    bounds = shot_boundaries(shots, fps)
    for shot, first, end in zip(shots, bounds, bounds[1:], strict=False):
        picture = _source(shot.source, width, height)
        pw, ph = picture.size
        zoom = min(0.08, 0.03 * shot.seconds)
        for i in range(end - first):
            t = i / max(1, end - first - 1)
            scale = 1 - zoom * t
            cw, ch = pw * scale, ph * scale
            x0, y0 = (pw - cw) * (0.5 - 0.2 * t), (ph - ch) * (0.5 - 0.2 * t)
            box = (x0, y0, x0 + cw, y0 + ch)
            frame = picture.resize((width, height), Image.Resampling.BILINEAR, box=box)
            yield np.asarray(frame)


def _video_options(codec: str) -> dict[str, str]:
    if codec == "libx264":  # frame threads, one slice per picture, as the ffmpeg CLI writes
        return {"preset": "veryfast", "x264-params": "sliced-threads=0"}
    if codec.startswith("libvpx"):  # the default "good" deadline is several times slower
        return {"deadline": "realtime", "cpu-used": "8", "b": "1M"}
    return {"b": "1M"}  # mpeg4's default 200 kb/s smears the texture


def _ass_dialogue(index: int, text: str) -> bytes:
    """An ASS event line (ReadOrder, Layer, Style, ...), what FFmpeg's text encoders take."""
    line = text.replace("\n", "\\N")  # ASS's line break
    return f"{index},0,Default,,0,0,0,,{line}".encode()


def write_video(
    path: Path | str,
    shots: Sequence[Shot],
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 10,
    codec: str | None = None,
    container: str | None = None,
    subtitles: Sequence[Cue] = (),
    subtitle_codec: str | None = None,
) -> Path:
    """Write ``shots`` joined by hard cuts; return ``path``.

    ``codec`` defaults to libvpx (VP8, the only codec a Chromium without proprietary
    codecs plays) for .webm and libx264 otherwise; mpeg4 also works. ``container`` is
    inferred from the suffix. ``subtitles`` become an embedded text track (mov_text in
    mp4/mov, subrip or ass in mkv, webvtt in webm/mkv); AVI holds no text subtitles, so
    asking for them there raises :class:`NotImplementedError`.
    """
    path = Path(path)
    fmt = container or _CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot infer a container from {path.name!r}; pass container=")
    codec = codec or ("libvpx" if fmt == "webm" else "libx264")
    if subtitles:
        subtitle_codec = subtitle_codec or _DEFAULT_SUBTITLE.get(fmt)
        if subtitle_codec is None:
            raise NotImplementedError(f"FFmpeg's {fmt} muxer cannot hold text subtitles")
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(codec, rate=fps, options=_video_options(codec))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        text = None
        if subtitles:
            try:
                text = out.add_stream(subtitle_codec)
            except ValueError as exc:
                raise NotImplementedError(f"{subtitle_codec} subtitles in {fmt}: {exc}") from exc
            text.codec_context.subtitle_header = _ASS_HEADER
            text.time_base = _MS
            text.metadata["language"] = "eng"
        cues = sorted(subtitles)

        def mux_cues_until(seconds: float) -> None:
            while text is not None and cues and cues[0][0] <= seconds:
                start, end, words = cues.pop(0)
                dialogue = _ass_dialogue(len(subtitles) - len(cues) - 1, words)
                duration = round((end - start) * 1000)
                cue = SubtitleSet.create(dialogue, 0, duration, round(start * 1000))
                packet = text.codec_context.encode_subtitle(cue)
                packet.stream, packet.time_base = text, _MS
                out.mux(packet)

        for index, pixels in enumerate(_frames(shots, width, height, fps)):
            mux_cues_until(index / fps)  # interleaved: Matroska clusters need it
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        mux_cues_until(float("inf"))
        out.mux(video.encode())
    return path


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return (
        f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"
    )


def write_srt(path: Path | str, cues: Sequence[Cue]) -> Path:
    """A SubRip sidecar (``clip.srt`` next to ``clip.mp4``), the commonest subtitle file."""
    blocks = [
        f"{i}\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\n{text}\n"
        for i, (a, b, text) in enumerate(cues, 1)
    ]
    Path(path).write_text("\n".join(blocks), encoding="utf-8")
    return Path(path)


def write_vtt(path: Path | str, cues: Sequence[Cue]) -> Path:
    """A WebVTT sidecar, the format browsers' <track> elements load."""
    blocks = [f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n" for a, b, text in cues]
    Path(path).write_text("WEBVTT\n\n" + "\n".join(blocks), encoding="utf-8")
    return Path(path)


# -- malformed ---------------------------------------------------------------------------


def _remux(src: Path, dst: Path, fmt: str, options: dict[str, str] | None = None) -> None:
    """Copy ``src``'s video packets into a new ``fmt`` file (no re-encoding)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt, options=options) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


def truncated_video(src: Path, dst: Path, keep: float = 0.5, *, faststart: bool = False) -> Path:
    """The first ``keep`` of an MP4's bytes: a download or copy cut off.

    By default the moov atom (the index) sits at the end, as FFmpeg writes it, so the
    truncated file has none and cannot be opened. With ``faststart`` the moov is moved to
    the front (as for web streaming): the header parses, but the media data stops early."""
    full = dst.with_name(dst.name + ".full.mp4")
    _remux(src, full, "mp4", {"movflags": "faststart"} if faststart else None)
    data = full.read_bytes()
    full.unlink()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def zero_length_video(dst: Path) -> Path:
    """An empty ``clip.mp4``: a failed download or a placeholder."""
    dst.write_bytes(b"")
    return dst


def audio_only_video(dst: Path, seconds: float = 1.0) -> Path:
    """An .mp4/.mkv holding only a 440 Hz AAC tone: a voice memo or music track, no picture."""
    rate = 44100
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        samples = np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate) * 0.3
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024].astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return dst


def jpeg_named_mp4(dst: Path) -> Path:
    """A JPEG photo renamed to ``.mp4`` (FFmpeg sniffs content, not names)."""
    dst.write_bytes(jpeg_bytes((320, 180), (40, 120, 200)))
    return dst


def text_named_mp4(dst: Path) -> Path:
    """A text note saved as ``.mp4``."""
    dst.write_text("Meeting notes\n- the demo video is still rendering\n", encoding="utf-8")
    return dst


_AVC_ID = b"V_MPEG4/ISO/AVC"
UNKNOWN_CODEC_ID = b"V_POLYLENS/NONE"  # same length as the AVC id: sizes stay valid


def unsupported_codec_video(src: Path, dst: Path) -> Path:
    """An MKV whose video track names a codec FFmpeg does not know.

    ``src`` must hold H.264 video (written with libx264). It is remuxed to Matroska, and
    the track's CodecID element, ``V_MPEG4/ISO/AVC``, patched in place to
    :data:`UNKNOWN_CODEC_ID`: the file is well formed but no decoder matches."""
    _remux(src, dst, "matroska")
    data = dst.read_bytes()
    if data.count(_AVC_ID) != 1:
        raise ValueError(f"{src} holds no H.264 track to relabel")
    dst.write_bytes(data.replace(_AVC_ID, UNKNOWN_CODEC_ID))
    return dst


def garbage_video(dst: Path, size: int = 64 * 1024) -> Path:
    """A valid MP4 ``ftyp`` box then seeded random bytes: sniffs as MP4, is not one."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomavc1"
    dst.write_bytes(ftyp + random.Random(20240601).randbytes(size - len(ftyp)))
    return dst
