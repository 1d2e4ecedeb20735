"""SIGKILL `polylens index` mid-run, re-run it, and check the index matches the files."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _invariants import check_consistent, files_under, index_rows
from PIL import Image

pytestmark = pytest.mark.slow


def _corpus(root: Path, samples: Path, n_images: int) -> Path:
    rng = np.random.default_rng(7)
    (root / "photos").mkdir(parents=True)
    for i in range(n_images):
        size = (int(rng.integers(40, 160)), int(rng.integers(40, 160)))
        pixels = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "photos" / f"img{i:03d}.png")
    shutil.copytree(samples / "pdf", root / "pdf")
    shutil.copytree(samples / "text", root / "text")
    return root


def _versions(index_dir: Path) -> int:
    versions = index_dir / "lance" / "items.lance" / "_versions"
    return len(list(versions.glob("*.manifest"))) if versions.is_dir() else 0


def _run(index_dir: Path, corpus: Path, *, kill_after_versions: int | None) -> dict | None:
    cmd = [
        sys.executable,
        "-m",
        "polylens",
        "index",
        str(corpus),
        "--index",
        str(index_dir),
        "--json",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if kill_after_versions is None:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        return json.loads(out)
    deadline = time.monotonic() + 300
    start_versions = _versions(index_dir)
    while _versions(index_dir) < start_versions + kill_after_versions:
        assert proc.poll() is None, (
            "indexing finished before the kill point; make the corpus larger"
        )
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


def test_killed_runs_resume_without_loss_or_duplicates(
    tmp_path: Path, samples_dir: Path, tiny_clip_dir: Path
) -> None:
    corpus = _corpus(tmp_path / "corpus", samples_dir, n_images=120)
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "polylens.toml").write_text(
        f'image_model = "{tiny_clip_dir}"\ntext_model = "fake-text"\nocr = false\n'
        "batch_size = 2\ncommit_every = 4\nworkers = 1\n"
    )
    expected = files_under(corpus)
    for kill_point in (2, 3, 4):
        _run(index_dir, corpus, kill_after_versions=kill_point)
        rows = index_rows(index_dir)
        # Whatever was committed is whole: every file row's content is complete.
        per_hash = collections.Counter(r["content_hash"] for r in rows["items"])
        for row in rows["files"]:
            assert per_hash[row["content_hash"]] == row["n_items"]
        ids = [r["id"] for r in rows["items"]]
        assert len(ids) == len(set(ids))
    committed_files = len(index_rows(index_dir)["files"])
    assert 0 < committed_files < len(expected)
    summary = _run(index_dir, corpus, kill_after_versions=None)
    assert summary is not None
    assert summary["added"] == len(expected) - committed_files
    assert summary["failed"] == 0
    check_consistent(index_dir, expected)
    again = _run(index_dir, corpus, kill_after_versions=None)
    assert again is not None and again["items_written"] == 0 and again["unchanged"] == len(expected)
