"""The video test helpers make what they say: real, decodable clips with visible cuts and
readable subtitles, and malformed files that fail in PyAV the way a user's files would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV builds and reads the test videos")
pytest.importorskip("skimage", reason="scikit-image provides the photos")

from _videos import (  # noqa: E402
    Shot,
    audio_only_video,
    garbage_video,
    jpeg_named_mp4,
    shot_boundaries,
    slide_picture,
    text_named_mp4,
    truncated_video,
    unsupported_codec_video,
    write_srt,
    write_video,
    write_vtt,
    zero_length_video,
)

SHOTS = [
    Shot(1.0, "astronaut"),
    Shot(0.8, "coffee"),
    Shot(0.7, "slide:Quarterly results"),
    Shot(0.5, "chelsea"),
]
FPS = 10
CUES = [(0.2, 0.9, "Hello world"), (1.5, 2.4, "Second, cue\nline two")]


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in clip.decode(video=0)]


def _subtitles(path: Path) -> list[tuple[float, str]]:
    """(start seconds, text) of every non-empty cue, decoded by PyAV."""
    out = []
    with av.open(str(path)) as clip:
        stream = clip.streams.subtitles[0]
        for packet in clip.demux(stream):
            for sub in stream.decode(packet) if packet.size else []:
                if sub.dialogue:
                    out.append((float(packet.pts * packet.time_base), sub.dialogue.decode()))
    return out


@pytest.mark.parametrize(
    ("name", "codec", "video_codec", "subtitle_codec", "read_back_as"),
    [
        ("clip.mp4", None, "h264", None, "mov_text"),
        ("clip.mov", "mpeg4", "mpeg4", None, "mov_text"),
        ("clip.mkv", None, "h264", None, "srt"),  # FFmpeg's subrip decoder is named srt
        ("clip.mkv", None, "h264", "ass", "ssa"),
        ("clip.webm", None, "vp8", None, "webvtt"),
        ("clip.avi", "mpeg4", "mpeg4", None, None),
    ],
)
def test_write_video(
    tmp_path: Path,
    name: str,
    codec: str | None,
    video_codec: str,
    subtitle_codec: str | None,
    read_back_as: str | None,
) -> None:
    path = write_video(
        tmp_path / name,
        SHOTS,
        fps=FPS,
        codec=codec,
        subtitles=CUES if read_back_as else (),
        subtitle_codec=subtitle_codec,
    )
    bounds = shot_boundaries(SHOTS, FPS)
    assert bounds == [0, 10, 18, 25, 30]
    with av.open(str(path)) as clip:
        video = clip.streams.video[0]
        assert video.codec_context.name == video_codec
        assert (video.codec_context.width, video.codec_context.height) == (320, 180)
        assert clip.duration / 1e6 == pytest.approx(3.0, abs=1 / FPS)
        names = [s.codec_context.name for s in clip.streams.subtitles]
        assert names == ([read_back_as] if read_back_as else [])
    frames = _frames(path)
    assert len(frames) == bounds[-1]
    diffs = [float(np.abs(a - b).mean()) for a, b in zip(frames, frames[1:], strict=False)]
    cuts = [i + 1 for i, d in enumerate(diffs) if d > 30]
    assert cuts == bounds[1:-1]
    within = [d for i, d in enumerate(diffs) if i + 1 not in cuts]
    assert max(within) < 8, "inside a shot the picture moves only a little"
    assert min(within) > 0.5, "inside a shot the picture does move"
    if read_back_as:
        assert _subtitles(path) == [(0.2, "Hello world"), (1.5, "Second, cue\nline two")]


@pytest.mark.parametrize(("name", "codec"), [("clip.avi", None), ("clip.mp4", "subrip")])
def test_subtitles_a_container_cannot_hold(tmp_path: Path, name: str, codec: str | None) -> None:
    with pytest.raises(NotImplementedError, match="subtitles"):
        write_video(tmp_path / name, SHOTS[:1], subtitles=CUES, subtitle_codec=codec)


def test_slide_picture_has_large_dark_text() -> None:
    pixels = np.asarray(slide_picture("Quarterly results", 320, 180).convert("L"))
    assert pixels.shape == (180, 320)
    rows, cols = np.nonzero(pixels < 100)
    assert np.median(pixels) == 255  # a white slide
    assert rows.max() - rows.min() > 180 * 0.3 and cols.max() - cols.min() > 320 * 0.4
    assert rows.min() > 5 and cols.min() > 5 and cols.max() < 315  # within the margins


@pytest.mark.slow
def test_slide_text_is_read_by_ocr_after_encoding(tmp_path: Path) -> None:
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    path = write_video(tmp_path / "slide.webm", [Shot(1.0, "slide:Quarterly results 2024")])
    last = _frames(path)[-1].astype(np.uint8)  # most zoomed in
    result, _ = rapidocr.RapidOCR()(last)
    assert " ".join(line[1] for line in result) == "Quarterly results 2024"


@pytest.mark.parametrize("writer", [write_srt, write_vtt])
def test_sidecar_subtitles(tmp_path: Path, writer) -> None:
    cues = [*CUES, (3725.25, 3726.0, "an hour in")]
    path = writer(tmp_path / ("clip.srt" if writer is write_srt else "clip.vtt"), cues)
    assert _subtitles(path) == [
        (0.2, "Hello world"),
        (1.5, "Second, cue\nline two"),
        (3725.25, "an hour in"),
    ]


@pytest.fixture(scope="module")
def h264_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(
        tmp_path_factory.mktemp("src") / "src.mp4", [Shot(1.0, "astronaut"), Shot(1.0, "coffee")]
    )


def _fails_to_open(path: Path) -> None:
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(path))


def test_truncated_without_moov_does_not_open(tmp_path: Path, h264_mp4: Path) -> None:
    path = truncated_video(h264_mp4, tmp_path / "cut.mp4")
    assert b"moov" not in path.read_bytes()
    _fails_to_open(path)


def test_truncated_faststart_opens_then_stops_decoding(tmp_path: Path, h264_mp4: Path) -> None:
    path = truncated_video(h264_mp4, tmp_path / "cut.mp4", faststart=True)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    decoded = 0
    with av.open(str(path)) as clip:
        video = clip.streams.video[0]
        assert video.frames == 20 and clip.duration == 2_000_000  # what the header promises
        with pytest.raises(av.error.InvalidDataError):
            for _ in clip.decode(video):
                decoded += 1
    assert 0 < decoded < 20


def test_zero_length(tmp_path: Path) -> None:
    _fails_to_open(zero_length_video(tmp_path / "empty.mp4"))


@pytest.mark.parametrize("name", ["memo.mp4", "memo.mkv"])
def test_audio_only(tmp_path: Path, name: str) -> None:
    with av.open(str(audio_only_video(tmp_path / name))) as clip:
        assert [s.type for s in clip.streams] == ["audio"]
        assert clip.streams.audio[0].codec_context.name == "aac"
        assert clip.duration / 1e6 == pytest.approx(1.0, abs=0.05)
        assert not clip.streams.video


def test_jpeg_named_mp4_opens_as_a_one_frame_mjpeg(tmp_path: Path) -> None:
    with av.open(str(jpeg_named_mp4(tmp_path / "clip.mp4"))) as clip:
        assert clip.format.name == "jpeg_pipe"  # FFmpeg sniffs the bytes, not the name
        assert clip.streams.video[0].codec_context.name == "mjpeg"
        assert clip.duration is None
        assert len(list(clip.decode(video=0))) == 1


def test_text_named_mp4(tmp_path: Path) -> None:
    _fails_to_open(text_named_mp4(tmp_path / "clip.mp4"))


def test_unsupported_codec_opens_but_has_no_decoder(tmp_path: Path, h264_mp4: Path) -> None:
    path = unsupported_codec_video(h264_mp4, tmp_path / "odd.mkv")
    with av.open(str(path)) as clip:
        video = clip.streams.video[0]
        assert video.codec_context is None  # repr: <av.VideoStream #0 video/<nocodec>>
        assert clip.duration == 2_000_000
        assert sum(1 for p in clip.demux(video) if p.size) == 20  # packets are all there
    with av.open(str(path)) as clip, pytest.raises(av.error.DecoderNotFoundError):
        next(clip.decode(video=0))


def test_garbage_after_ftyp(tmp_path: Path) -> None:
    path = garbage_video(tmp_path / "clip.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"
    _fails_to_open(path)
