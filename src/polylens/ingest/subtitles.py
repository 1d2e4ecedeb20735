"""Subtitles of a video as timed text: sidecar ``.srt``/``.vtt`` files and text tracks
muxed into the container, so a video's segments can be searched by what is said in them.

SRT and WebVTT are parsed by hand rather than with PyPI's ``srt`` or ``webvtt-py``: both
formats are a timestamp line and some text, about forty lines here, and embedded tracks
need ASS-tag stripping that neither package does, so a dependency would buy little.
Parsing is lenient, as players are: a block that cannot be read is skipped, never fatal,
so one bad cue does not cost the video its other subtitles.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from polylens.errors import CorruptFileError, InputError
from polylens.ingest.text import decode_text

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.subtitles.stream import SubtitleStream
    from av.subtitles.subtitle import Subtitle


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` seconds, ``text`` plain (markup
    stripped, lines joined with a space, whitespace collapsed)."""

    start: float
    end: float
    text: str


SIDECAR_SUFFIXES = (".srt", ".vtt")

# A subtitle file is text; one this large is something else with a subtitle's name.
MAX_SIDECAR_BYTES = 16 << 20

# Seek this far before ``start``: a cue that began a little earlier still overlaps the
# range, and container seeks land on video keyframes anyway. A cue that began more
# than this before ``start`` is missed (subtitles last seconds, not minutes).
_SEEK_SLACK_S = 10.0

# [hours:]minutes:seconds(,|.)fraction; SRT wants hours and a comma, VTT makes hours
# optional and uses a dot; real files mix them, so both parsers take either.
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")  # cue settings may follow
_TAG = re.compile(r"</?(?:[A-Za-z][^<>]*|\d[\d:.]*)>")  # <i>, <font ...>, <c.x>, <00:01.000>
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # {\an8} in SRT
_ASS_BLOCK = re.compile(r"\{[^}]*\}")  # any {...} in ASS: overrides and comments
_ASS_BREAK = re.compile(r"\\[Nnh]")


def sidecar_stems(path: str) -> list[str]:
    """Video stems a subtitle file could belong to, longest first: ``clip.en.srt`` ->
    ``["clip.en", "clip"]``; ``[]`` if ``path`` has no subtitle suffix.

    Players (VLC, mpv) pair ``clip.mp4`` with ``clip.srt`` and language-tagged
    ``clip.en.srt`` alike, so every dotted prefix of the name is a candidate."""
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in SIDECAR_SUFFIXES or not stem:
        return []
    parts = stem.split(".")
    stems = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return [s for s in stems if s]


def is_sidecar_of_video(path: str, video_stems: Collection[str]) -> bool:
    """Whether ``path`` is a subtitle file of one of the videos in its folder, given
    the stems of those videos (``Path(video).stem``, case as on disk).

    A walker skips such files: their text is indexed with the video, not on its own."""
    return any(stem in video_stems for stem in sidecar_stems(path))


def sidecar_paths(video_path: str) -> list[str]:
    """Existing sidecar subtitle files of a video: same folder, same stem, ``.srt`` or
    ``.vtt`` (also language-tagged ones: ``clip.en.srt``, ``clip.fr.vtt``), sorted.

    A file belongs to the longest stem that names another file in the folder, so with
    ``clip.mp4`` and ``clip.part2.mp4`` side by side, ``clip.part2.srt`` is only the
    second one's."""
    folder, name = os.path.split(os.path.abspath(video_path))
    stem = os.path.splitext(name)[0]
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    owners = {os.path.splitext(n)[0] for n in names if not sidecar_stems(n)}
    found = []
    for n in names:
        candidates = sidecar_stems(n)
        owner = next((s for s in candidates if s in owners), stem if stem in candidates else None)
        if owner == stem and os.path.isfile(path := os.path.join(folder, n)):
            found.append(path)
    return sorted(found)


def read_sidecar(path: str) -> list[Cue]:
    """Cues of a subtitle file: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252.

    WebVTT is told by its ``WEBVTT`` header (or a ``.vtt`` name), so a misnamed file
    still parses. Raises ``InputError`` if the file cannot be read or is over 16 MiB;
    blocks that do not parse are skipped, so the caller gets what could be read."""
    try:
        size = os.path.getsize(path)
        if size > MAX_SIDECAR_BYTES:
            raise InputError(f"{path}: {size} bytes is too large for a subtitle file")
        with open(path, "rb") as f:
            data = f.read(MAX_SIDECAR_BYTES)  # the bound holds if it grew meanwhile
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    text = decode_text(data).lstrip("\ufeff")
    if text.startswith("WEBVTT") or path.lower().endswith(".vtt"):
        return parse_vtt(text)
    return parse_srt(text)


def parse_srt(text: str) -> list[Cue]:
    """Cues of SubRip text, sorted by start. Sequence numbers are optional."""
    return _parse(text, vtt=False)


def parse_vtt(text: str) -> list[Cue]:
    """Cues of WebVTT text, sorted by start. The header, NOTE/STYLE/REGION blocks and
    cue identifiers are skipped, cue settings after the timing ignored, ``&amp;`` and
    the like unescaped."""
    return _parse(text, vtt=True)


def _parse(text: str, *, vtt: bool) -> list[Cue]:
    # Line by line rather than block by block: a cue is a timing line and the lines
    # after it up to a blank line or the next timing line, so files that lost their
    # blank lines still parse, and anything outside a cue (headers, NOTE/STYLE/REGION
    # blocks, identifiers, garbage) is never collected.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[Cue] = []
    timing: tuple[float, float] | None = None
    body: list[str] = []

    def close() -> None:
        if timing is not None and timing[1] >= timing[0]:
            cleaned = _clean_markup(body, vtt=vtt)
            if cleaned:
                cues.append(Cue(timing[0], timing[1], cleaned))

    for line in lines:
        match = _TIMING.match(line)
        if match:
            if body and body[-1].strip().isdigit():
                body.pop()  # the next cue's sequence number, no blank line before it
            close()
            timing, body = (_seconds(match.groups()[:4]), _seconds(match.groups()[4:])), []
        elif not line.strip():
            close()
            timing, body = None, []
        elif timing is not None:
            body.append(line)
    close()
    return sorted(cues, key=lambda c: c.start)


def _seconds(groups: Sequence[str | None]) -> float:
    hours, minutes, seconds, fraction = groups
    value = int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
    return value + (float("0." + fraction) if fraction else 0.0)


def _clean_markup(lines: Sequence[str], *, vtt: bool) -> str:
    text = _ASS_OVERRIDE.sub("", _TAG.sub("", " ".join(lines)))
    if vtt:
        text = html.unescape(text)
    return " ".join(text.split())


def _clean_ass(dialogue: str) -> str:
    # FFmpeg hands text subtitles over as ASS events without the timing fields:
    # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text".
    parts = dialogue.split(",", 8)
    body = parts[8] if len(parts) == 9 else dialogue
    return " ".join(_ASS_BREAK.sub(" ", _ASS_BLOCK.sub("", body)).split())


def embedded_cues(
    container: InputContainer, start: float | None = None, end: float | None = None
) -> list[Cue]:
    """Text subtitle tracks inside an open PyAV container (mov_text in MP4, subrip/ass/
    webvtt in MKV/WebM) overlapping ``start``..``end`` seconds, all tracks merged and
    sorted by start. Bitmap tracks (PGS, DVD) are skipped: OCR of them is not worth it.

    Seeks to a little before ``start`` (or to the beginning): the container's read
    position moves. A packet that does not decode is skipped; a container that cannot
    be read raises ``CorruptFileError``."""
    import av  # the video extra; only callers that opened a container get here

    streams = [s for s in container.streams.subtitles if _is_text(s)]
    if not streams:
        return []
    try:  # from the start too: the caller may have read the container already
        container.seek(int(max(0.0, (start or 0.0) - _SEEK_SLACK_S) * 1_000_000))
    except av.FFmpegError:
        pass  # not seekable: read from where it stands, times still filter
    lo = float("-inf") if start is None else start
    hi = float("inf") if end is None else end
    cues: list[Cue] = []
    try:
        for packet in container.demux(streams):
            if packet.size == 0 or packet.pts is None or packet.stream.time_base is None:
                continue
            t0 = float(packet.pts * packet.stream.time_base)
            if t0 >= hi:
                break  # packets come in time order; the rest are later still
            try:
                subs = packet.stream.codec_context.decode2(packet)
            except av.FFmpegError:
                subs = None
            if subs is None:  # undecodable, or an empty sample (mov_text fills gaps so)
                continue
            t0 += subs.start_display_time / 1000
            if packet.duration:
                t1 = float((packet.pts + packet.duration) * packet.stream.time_base)
            elif subs.end_display_time > subs.start_display_time:
                t1 = t0 + (subs.end_display_time - subs.start_display_time) / 1000
            else:
                t1 = t0  # shown until the next cue; a point in time is the best guess
            cue = Cue(t0, t1, " ".join(_rect_text(r) for r in subs.rects).strip())
            if cue.text and _overlaps(cue, lo, hi):
                cues.append(cue)
    except av.FFmpegError as exc:
        raise CorruptFileError(f"cannot read subtitle tracks: {exc}") from exc
    return sorted(cues, key=lambda c: c.start)


def _is_text(stream: SubtitleStream) -> bool:
    codec = getattr(stream.codec_context, "codec", None)  # None: no decoder in this build
    return bool(getattr(codec, "text_sub", False))


def _rect_text(rect: Subtitle) -> str:
    from av.subtitles.subtitle import AssSubtitle

    if not isinstance(rect, AssSubtitle):
        return ""  # bitmap
    if rect.type == b"ass":  # what FFmpeg's text decoders produce
        return _clean_ass(rect.ass.decode("utf-8", "replace"))
    return " ".join(rect.text.decode("utf-8", "replace").split())


def _overlaps(cue: Cue, start: float, end: float) -> bool:
    if cue.end == cue.start:  # a point: inside the half-open range or not
        return start <= cue.start < end
    return cue.start < end and cue.end > start


def text_between(cues: Sequence[Cue], start: float, end: float) -> str:
    """Text of the cues overlapping ``[start, end)``, in time order, with a cue dropped
    when it repeats the text of the cue before it (a line re-timed or split across
    cues would otherwise be indexed twice). A zero-length cue counts if it lies in the
    range."""
    parts: list[str] = []
    for cue in sorted(cues, key=lambda c: (c.start, c.end)):
        if _overlaps(cue, start, end) and (not parts or parts[-1] != cue.text):
            parts.append(cue.text)
    return " ".join(parts)
