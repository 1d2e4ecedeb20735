"""The video cutter's rules, its keyframe memory, frame pooling and time display."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from polylens.cli._common import clock, located
from polylens.ingest import video
from polylens.ingest.video import _Cutter, _Keyframes, keyframe_time, rules_for, windows
from polylens.representations.frames import Frames, embed_pooled
from polylens.types import Hit


def test_rules_stretch_segments_so_the_cap_holds() -> None:
    short = rules_for(600.0, max_seconds=20.0, max_segments=1500)
    assert (short.min_seconds, short.max_seconds) == (1.0, 20.0)
    ten_hours = rules_for(36_000.0, max_seconds=20.0, max_segments=1500)
    assert ten_hours.min_seconds == pytest.approx(24.0)
    assert ten_hours.max_seconds == pytest.approx(48.0)
    # at most one segment per min_seconds, whatever the cuts: the cap holds
    assert 36_000.0 / ten_hours.min_seconds <= 1500


def test_windows_cover_the_video_without_a_sliver_at_the_end() -> None:
    assert windows(50.0, 120.0) == [(0.0, float("inf"))]
    parts = windows(250.0, 120.0)
    assert [a for a, _ in parts] == [0.0, 125.0] and parts[-1][1] == float("inf")
    assert len(windows(3600.0, 120.0)) == 30


def test_keyframes_stay_few_however_long_the_segment() -> None:
    frames = _Keyframes(start=10.0)
    picture = Image.new("RGB", (64, 36))
    held = []
    for step in range(0, 4 * 600):  # ten minutes at 4 frames a second
        t = 10.0 + step / 4
        if frames.wants(t):
            frames.add(t, picture.copy())
        held.append(len(frames.pictures))
    assert max(held) <= video.KEYFRAMES + 1
    chosen = frames.chosen()
    assert len(chosen) == video.KEYFRAMES
    times = [t for t, _ in frames.pictures]
    assert times[0] == pytest.approx(10.25) and times[-1] > 500


def test_a_short_segment_keeps_its_first_frame() -> None:
    frames = _Keyframes(start=0.0)
    frames.add(0.0, Image.new("RGB", (8, 8)))
    assert len(frames.chosen()) == 1
    frames.add(0.3, Image.new("RGB", (8, 8), "white"))  # past the offset: replaces it
    assert [t for t, _ in frames.pictures] == [0.3]


def test_cutter_cuts_on_a_jump_not_on_steady_motion() -> None:
    rng = np.random.default_rng(0)
    cutter = _Cutter()
    base = rng.integers(0, 255, (27, 48, 3), dtype=np.uint8)
    cuts = []
    for i in range(40):  # a pan: every frame differs a lot from the last
        cuts.append(cutter.is_cut(np.roll(base, 3 * i, axis=1)))
    assert sum(cuts) <= 1  # at most the first big change, before a median exists
    cutter = _Cutter()
    still = np.full((27, 48, 3), 40, np.uint8)
    for _ in range(5):
        assert not cutter.is_cut(still + rng.integers(0, 3, still.shape, dtype=np.uint8))
    assert cutter.is_cut(np.full((27, 48, 3), 220, np.uint8))


def test_keyframe_time_is_the_middle_of_a_segment() -> None:
    assert keyframe_time(10.0, 20.0) == 15.0
    assert keyframe_time(10.0, 10.3) == 10.0
    assert keyframe_time(3.0, None) == 3.0


def test_pooled_embedding_is_the_normalised_mean_of_the_frames() -> None:
    def embed(inputs: list) -> np.ndarray:
        return np.array([[1.0, 0.0] if x == "a" else [0.0, 1.0] for x in inputs], np.float32)

    vectors = embed_pooled(embed, ["a", Frames(("a", "b")), Frames(("b",))])
    assert vectors.shape == (3, 2)
    np.testing.assert_allclose(vectors[0], [1, 0])
    np.testing.assert_allclose(vectors[1], [2**-0.5, 2**-0.5], rtol=1e-6)
    np.testing.assert_allclose(vectors[2], [0, 1])


def test_times_read_like_a_player() -> None:
    assert clock(83.9) == "01:23" and clock(3723) == "1:02:03"
    hit = Hit("h:v83000", "clip.mp4", "video", None, 0.5, start=83.0, end=101.0)
    assert located(hit) == " @ 01:23–01:41"
    assert located(Hit("h:p2", "a.pdf", "page", 2, 0.5)) == "  p.2"
