"""Video files end to end: segments at the cuts, timed subtitles (sidecar and embedded)
as searchable text, hits with their time range, and bad videos failing alone.

The videos are made here with PyAV from scikit-image's real photos (tests/_videos.py);
the encoders are the deterministic fakes, so this is about cutting, text and plumbing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _invariants import check_consistent, files_under
from _videos import (
    Shot,
    audio_only_video,
    garbage_video,
    jpeg_named_mp4,
    truncated_video,
    unsupported_codec_video,
    write_srt,
    write_video,
    zero_length_video,
)

from polylens.engine import Index
from polylens.store.base import ITEMS
from polylens.store.lance import LanceStore

THREE_SHOTS = [Shot(2.0, "astronaut"), Shot(2.5, "coffee"), Shot(2.0, "chelsea")]


def _segments(index: Index) -> list[dict]:
    store = LanceStore(index.path / "lance")
    try:
        rows = store.get(ITEMS)
    finally:
        store.close()
    return sorted((r for r in rows if r["kind"] == "video"), key=lambda r: r["start"])


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    root = tmp_path / "videos"
    root.mkdir()
    write_video(root / "walk.mp4", THREE_SHOTS)
    write_srt(root / "walk.srt", [(2.2, 4.0, "a steaming cup of coffee on the table")])
    return root


def test_segments_follow_the_cuts_and_carry_the_subtitles(fast_index: Index, videos: Path) -> None:
    summary = fast_index.add([videos])
    assert (summary.added, summary.failed) == (1, 0)
    assert [Path(f.path).name for f in summary.skipped_files] == ["walk.srt"]
    assert "subtitles of walk.mp4" in summary.skipped_files[0].reason
    segments = _segments(fast_index)
    starts = [s["start"] for s in segments]
    assert len(segments) == 3, starts
    for found, cut in zip(starts, [0.0, 2.0, 4.5], strict=True):
        assert abs(found - cut) <= 0.3, starts  # compared 4 times a second
    assert segments[-1]["end"] == pytest.approx(6.5, abs=0.15)
    assert "coffee" in segments[1]["text"] and segments[1]["text_source"] == "subtitles"
    assert not segments[0]["text"]
    check_consistent(fast_index.path, files_under(videos) - {str(videos / "walk.srt")})


def test_slide_changes_are_cuts_too(fast_index: Index, tmp_path: Path) -> None:
    """A slide whose text changes moves the mean difference little; it is still a cut."""
    root = tmp_path / "talk"
    root.mkdir()
    slides = ["Agenda for today", "Quarterly results 2024", "Questions?"]
    write_video(root / "talk.mp4", [Shot(2.0, f"slide:{text}") for text in slides])
    fast_index.add([root])
    starts = [s["start"] for s in _segments(fast_index)]
    assert len(starts) == 3 and abs(starts[1] - 2.0) <= 0.3 and abs(starts[2] - 4.0) <= 0.3


def test_video_hits_have_their_time_range(fast_index: Index, videos: Path) -> None:
    fast_index.add([videos])
    hits = fast_index.search("steaming coffee", k=3, kind="video")
    assert hits and hits[0].kind == "video" and hits[0].path.endswith("walk.mp4")
    assert hits[0].start == pytest.approx(2.0, abs=0.3) and hits[0].end > hits[0].start
    assert hits[0].to_dict()["start"] == hits[0].start
    assert all(h.kind == "video" for h in fast_index.search("photo", k=10, kind="video"))
    info = fast_index.item(hits[0].id)
    assert (info.start, info.end) == (hits[0].start, hits[0].end)
    picture = fast_index.item_image(hits[0].id, max_side=160)
    assert max(picture.size) == 160


def test_editing_the_sidecar_reindexes_the_video(fast_index: Index, videos: Path) -> None:
    fast_index.add([videos])
    write_srt(videos / "walk.srt", [(0.5, 1.5, "an astronaut in a white suit")])
    summary = fast_index.add([videos])
    assert (summary.updated, summary.items_written) == (1, 3)
    texts = [s["text"] for s in _segments(fast_index)]
    assert "astronaut" in texts[0] and not any("coffee" in t for t in texts)
    check_consistent(fast_index.path, files_under(videos) - {str(videos / "walk.srt")})
    again = fast_index.add([videos])
    assert (again.unchanged, again.items_written) == (1, 0)


def test_embedded_subtitle_track_is_read(fast_index: Index, tmp_path: Path) -> None:
    root = tmp_path / "mkv"
    root.mkdir()
    write_video(
        root / "talk.mkv",
        [Shot(2.0, "rocket"), Shot(2.0, "astronaut")],
        subtitles=[(2.5, 3.5, "liftoff of the rocket engines")],
        subtitle_codec="subrip",
    )
    fast_index.add([root])
    segments = _segments(fast_index)
    assert len(segments) == 2
    assert "liftoff" in segments[1]["text"] and "liftoff" not in segments[0]["text"]


def test_long_shots_are_split_and_very_long_videos_capped(
    fast_index: Index, tmp_path: Path
) -> None:
    root = tmp_path / "long"
    root.mkdir()
    write_video(root / "one-shot.webm", [Shot(7.0, "coffee")], fps=5)
    index = fast_index
    index.config = index.config.replace(video_max_segment=2.0)
    index.add([root])
    lengths = [round(s["end"] - s["start"], 1) for s in _segments(index)]
    assert len(lengths) == 4 and max(lengths) <= 2.0 and sum(lengths) == pytest.approx(7.0, 0.05)


def test_bad_videos_fail_alone_with_a_reason(fast_index: Index, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    good = write_video(root / "good.mp4", [Shot(1.0, "astronaut"), Shot(1.0, "coffee")])
    truncated_video(good, root / "truncated.mp4")
    truncated_video(good, root / "cut-short.mp4", keep=0.6, faststart=True)
    zero_length_video(root / "empty.mp4")
    audio_only_video(root / "voice.mp4")
    garbage_video(root / "garbage.mp4")
    unsupported_codec_video(
        write_video(root / "src.mkv", [Shot(1.0, "rocket")]), root / "alien.mkv"
    )
    (root / "src.mkv").unlink()
    jpeg_named_mp4(root / "photo.mp4")
    summary = fast_index.add([root])
    reasons = {Path(f.path).name: f.reason for f in summary.failures}
    assert "voice.mp4" in reasons and "audio only" in reasons["voice.mp4"]
    assert "truncated.mp4" in reasons and "garbage.mp4" in reasons
    assert "alien.mkv" in reasons and "codec" in reasons["alien.mkv"]
    skipped = {Path(f.path).name: f.reason for f in summary.skipped_files}
    assert skipped == {"empty.mp4": "empty file"}  # as for any empty file
    for name, reason in reasons.items():
        assert reason and "Traceback" not in reason, (name, reason)
    kinds = {
        Path(r["path"]).name: r["file_kind"]
        for r in check_consistent(
            fast_index.path, files_under(root) - {str(root / n) for n in [*reasons, *skipped]}
        )["files"]
    }
    assert kinds["good.mp4"] == "video" and kinds["photo.mp4"] == "image"
    if "cut-short.mp4" not in reasons:  # its header parses; what decodes is indexed
        assert kinds["cut-short.mp4"] == "video"


@pytest.mark.slow
def test_on_screen_text_is_read_through_the_presence_gate(tmp_path: Path) -> None:
    """Real OCR (RapidOCR's packaged model): a slide's words become the segment's text;
    the photo segments pass the presence gate without text."""
    from conftest import FAST

    from polylens import open_index

    root = tmp_path / "lecture"
    root.mkdir()
    shots = [Shot(2.0, "astronaut"), Shot(2.0, "slide:Quarterly results 2024")]
    write_video(root / "lecture.mp4", shots, width=640, height=360)
    with open_index(tmp_path / "idx", **{**FAST, "ocr": True}) as index:
        summary = index.add([root])
        assert summary.failed == 0
        segments = _segments(index)
        assert len(segments) == 2
        assert not segments[0]["text"].strip()
        assert segments[1]["text_source"] == "ocr"
        assert "quarterly" in segments[1]["text"].lower()
        hits = index.search("quarterly results", k=1)
        assert hits[0].start == pytest.approx(2.0, abs=0.3)


@pytest.mark.slow
def test_speech_model_adds_a_transcript_to_the_segments(tmp_path: Path) -> None:
    """A tiny random-weight wav2vec2 (the real architecture, loaded through the same
    transformers pipeline as a real model): its words are noise, but they land in the
    segments they were heard in; an unloadable speech model only costs the transcripts."""
    from _tiny_asr import make_tiny_wav2vec2, speech_file
    from conftest import FAST

    from polylens.engine import open_index

    root = tmp_path / "memo"
    root.mkdir()
    speech_file(root / "memo.mp4", 8.0)
    model = make_tiny_wav2vec2(tmp_path / "tiny-wav2vec2")
    with open_index(tmp_path / "idx", **FAST, speech_model=str(model)) as index:
        summary = index.add([root])
        assert summary.failed == 0 and not summary.warnings
        segments = _segments(index)
        assert segments and all(s["text_source"] == "speech" for s in segments)
        assert all(s["text"].strip() for s in segments)
    with open_index(tmp_path / "idx2", **FAST, speech_model=str(tmp_path / "nowhere")) as index:
        summary = index.add([root])
        assert summary.failed == 0 and summary.items_written >= 1
        assert any("speech model" in w and "without transcripts" in w for w in summary.warnings)
