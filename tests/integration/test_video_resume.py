"""A killed video run resumes like any other: what was committed stays, the rest is done
by the next run, and nothing is written twice (segment ids are their start times)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from _fault import KillPoint, index_command, run_and_kill, run_index
from _invariants import check_committed, check_consistent, files_under
from _videos import Shot, write_srt, write_video

pytestmark = pytest.mark.slow

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "horse"]


def test_killed_video_runs_resume_to_the_same_index(tmp_path: Path) -> None:
    rng = random.Random(17)
    root = tmp_path / "videos"
    root.mkdir()
    for n in range(3):
        shots = [Shot(1.5, PHOTOS[(n + i) % len(PHOTOS)]) for i in range(12)]
        write_video(root / f"clip{n}.mp4", shots)
    write_srt(root / "clip1.srt", [(3.2, 4.4, "the rocket on its launch pad")])
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "polylens.toml").write_text("batch_size = 2\ncommit_every = 2\nworkers = 2\n")
    killed = 0
    for _ in range(6):
        point = KillPoint(versions=rng.randint(1, 8), delay=rng.uniform(0.0, 0.05))
        if run_and_kill(index_command(index_dir, root), index_dir, point):
            killed += 1
            check_committed(index_dir)
    assert killed >= 3
    summary = run_index(index_dir, root)
    assert summary["failed"] == 0, summary["failures"]
    expected = files_under(root) - {str(root / "clip1.srt")}
    rows = check_consistent(index_dir, expected)
    segments = [r for r in rows["items"] if r["kind"] == "video"]
    assert len(segments) == 36, sorted((r["content_hash"][:6], r["start"]) for r in segments)
    assert any("rocket" in r["text"] for r in segments)
    again = run_index(index_dir, root)
    assert again["items_written"] == 0 and again["unchanged"] == 3
