"""Subtitles: SRT/VTT sidecars, their discovery, and text tracks muxed into videos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from polylens.errors import InputError
from polylens.ingest import subtitles
from polylens.ingest.subtitles import (
    Cue,
    embedded_cues,
    is_sidecar_of_video,
    parse_srt,
    parse_vtt,
    read_sidecar,
    sidecar_paths,
    sidecar_stems,
    text_between,
)

SRT = (
    '1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> <font color="red">there</font>\r\n'
    "{\\an8}second   line\r\n\r\n"
    "2\r\n00:00:03,000 --> 00:00:04,000\r\n<b>Bold</b> move\r\n\r\n"
)


def test_srt_crlf_markup_and_sequence_numbers() -> None:
    assert parse_srt(SRT) == [
        Cue(1.0, 2.5, "Hello there second line"),
        Cue(3.0, 4.0, "Bold move"),
    ]


def test_srt_missing_numbers_and_blank_lines_dot_decimal_short_fraction() -> None:
    text = "00:00:01.5 --> 00:00:02.000\nNo number\n7\n00:00:03,000 --> 00:00:04,000\nNext\n"
    assert parse_srt(text) == [Cue(1.5, 2.0, "No number"), Cue(3.0, 4.0, "Next")]


def test_srt_malformed_blocks_skipped_backwards_dropped_overlaps_kept() -> None:
    text = (
        "1\n00:00:xx,000 --> 00:00:02,000\nbad timing\n\n"
        "2\n00:00:05,000 --> 00:00:04,000\nends before it starts\n\n"
        "garbage without timing\n\n"
        "3\n00:00:06,000 --> 00:00:08,000\nfirst\n\n"
        "4\n00:00:07,000 --> 00:00:09,000\noverlapping\n\n"
        "5\n00:00:10,000 --> 00:00:11,000\n\n"  # no text
    )
    assert parse_srt(text) == [Cue(6.0, 8.0, "first"), Cue(7.0, 9.0, "overlapping")]


def test_vtt_header_notes_styles_settings_hourless() -> None:
    text = (
        "WEBVTT - a title\nKind: captions\n\n"
        "NOTE this is a comment\nspanning lines\n\n"
        "STYLE\n::cue { color: red }\n\n"
        "REGION\nid:fred width:40%\n\n"
        "intro\n01:02.500 --> 01:04.000 align:start position:10%\n"
        "<v Roger>Hi &amp; welcome</v> <c.yellow>all</c>\n"
        "<00:01:03.000>karaoke\n\n"
        "01:00:00.000 --> 01:00:01.000\nan hour in\n"
    )
    assert parse_vtt(text) == [
        Cue(62.5, 64.0, "Hi & welcome all karaoke"),
        Cue(3600.0, 3601.0, "an hour in"),
    ]


def test_parsers_sort_by_start() -> None:
    text = "00:00:05,000 --> 00:00:06,000\nlater\n\n00:00:01,000 --> 00:00:02,000\nearlier\n"
    assert [c.text for c in parse_srt(text)] == ["earlier", "later"]


def test_read_sidecar_encodings(tmp_path: Path) -> None:
    body = "1\n00:00:01,000 --> 00:00:02,000\nCafé crème\n"
    for name, data in {
        "bom.srt": b"\xef\xbb\xbf" + body.encode("utf-8"),
        "plain.srt": body.encode("utf-8"),
        "utf16.srt": body.encode("utf-16"),  # with a BOM
        "latin.srt": body.encode("cp1252"),
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert read_sidecar(str(path)) == [Cue(1.0, 2.0, "Café crème")], name


def test_read_sidecar_dispatches_on_content(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.srt"
    path.write_bytes(b"\xef\xbb\xbfWEBVTT\n\n00:01.000 --> 00:02.000\nfish &amp; chips\n")
    assert read_sidecar(str(path)) == [Cue(1.0, 2.0, "fish & chips")]


def test_read_sidecar_refuses_large_and_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.srt"
    path.write_bytes(b"x" * 100)
    monkeypatch.setattr(subtitles, "MAX_SIDECAR_BYTES", 99)
    with pytest.raises(InputError, match="too large"):
        read_sidecar(str(path))
    with pytest.raises(InputError, match="cannot read"):
        read_sidecar(str(tmp_path / "absent.srt"))


def test_text_between_overlap_and_duplicates() -> None:
    cues = [
        Cue(4.0, 5.0, "after"),
        Cue(0.0, 1.0, "before"),
        Cue(1.0, 2.0, "touching start"),
        Cue(1.5, 3.0, "hello"),
        Cue(2.0, 2.5, "hello"),  # repeated: dropped
        Cue(2.6, 2.6, "point"),
        Cue(2.8, 4.5, "straddles end"),
        Cue(3.0, 3.5, "hello"),  # not consecutive with the other one: kept
    ]
    assert text_between(cues, 1.0, 4.0) == "touching start hello point straddles end hello"
    assert text_between(cues, 5.0, 6.0) == ""  # end is exclusive, start inclusive
    assert text_between(cues, 2.6, 2.9) == "hello point straddles end"


def test_sidecar_discovery(tmp_path: Path) -> None:
    for name in [
        "clip.mp4",
        "clip.srt",
        "clip.en.srt",
        "clip.fr.VTT",
        "clip.part2.mp4",
        "clip.part2.srt",  # the other video's
        "clipper.srt",
        "clip.txt",
        "other.vtt",
    ]:
        (tmp_path / name).write_text("x")
    (tmp_path / "clip.de.srt").mkdir()  # not a file
    found = [Path(p).name for p in sidecar_paths(str(tmp_path / "clip.mp4"))]
    assert found == ["clip.en.srt", "clip.fr.VTT", "clip.srt"]
    assert [Path(p).name for p in sidecar_paths(str(tmp_path / "clip.part2.mp4"))] == [
        "clip.part2.srt"
    ]
    assert sidecar_paths(str(tmp_path / "missing" / "clip.mp4")) == []


def test_sidecar_stems_for_a_walker() -> None:
    assert sidecar_stems("/v/clip.en.forced.srt") == ["clip.en.forced", "clip.en", "clip"]
    assert sidecar_stems("clip.VTT") == ["clip"]
    assert sidecar_stems("clip.txt") == [] and sidecar_stems(".srt") == []
    assert is_sidecar_of_video("/v/clip.en.srt", {"clip", "holiday"})
    assert not is_sidecar_of_video("/v/lecture.srt", {"clip"})


# Embedded tracks: muxed with PyAV itself (its subtitle encoders take ASS events).

_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
    b"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
_EVENTS = [
    (1.0, 2.0, "{\\an8}Hello {\\i1}world{\\i0}\\Nline two"),
    (14.0, 21.0, "long one"),
    (25.0, 26.0, "near the end"),
]


def _mux(path: Path, video_codec: str, sub_codec: str, *, bitmap: bool = False) -> None:
    av = pytest.importorskip("av")
    import numpy as np
    from av.subtitles.subtitle import SubtitleSet

    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=1)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sub = out.add_stream(sub_codec)
        sub.time_base = Fraction(1, 1000)
        sub.codec_context.subtitle_header = _ASS_HEADER
        if bitmap:  # a DVD track, never decoded: its payload is not even a bitmap
            dvd = out.add_stream("dvd_subtitle")
            dvd.time_base = Fraction(1, 1000)
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        for i in range(30):
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for start, end, text in _EVENTS:
            event = f"0,0,Default,,0,0,0,,{text}".encode()
            subset = SubtitleSet.create(event, 0, int((end - start) * 1000), int(start * 1000))
            packet = sub.codec_context.encode_subtitle(subset)
            packet.stream = sub
            out.mux(packet)
            if bitmap:
                junk = av.Packet(b"\x00\x08not a bitmap")
                junk.stream, junk.pts, junk.dts, junk.duration = dvd, int(start * 1000), None, 500
                out.mux(junk)


@pytest.mark.parametrize(
    ("name", "video_codec", "sub_codec"),
    [
        ("subrip.mkv", "mpeg4", "subrip"),
        ("ass.mkv", "mpeg4", "ass"),
        ("webvtt.mkv", "mpeg4", "webvtt"),
        ("mov_text.mp4", "mpeg4", "mov_text"),
    ],
)
def test_embedded_cues(tmp_path: Path, name: str, video_codec: str, sub_codec: str) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / name
    _mux(path, video_codec, sub_codec, bitmap=name.endswith(".mkv"))
    with av.open(str(path)) as container:
        assert embedded_cues(container) == [
            Cue(1.0, 2.0, "Hello world line two"),
            Cue(14.0, 21.0, "long one"),
            Cue(25.0, 26.0, "near the end"),
        ]
        # Seeks, then still finds the cue that began before the range and overlaps it.
        assert embedded_cues(container, 20.0, 25.0) == [Cue(14.0, 21.0, "long one")]
        assert embedded_cues(container, 2.0, 14.0) == []
        assert [c.text for c in embedded_cues(container, 24.0)] == ["near the end"]
        assert [c.text for c in embedded_cues(container, None, 1.5)] == ["Hello world line two"]


def test_embedded_cues_without_text_tracks(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / "silent.mkv"
    with av.open(str(path), "w") as out:
        dvd = out.add_stream("dvd_subtitle")
        packet = av.Packet(b"\x00\x08not a bitmap")
        packet.stream, packet.pts, packet.duration = dvd, 0, 500
        out.mux(packet)
    with av.open(str(path)) as container:
        assert embedded_cues(container, 0.0, 10.0) == []
