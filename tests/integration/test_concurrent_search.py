"""Searches running while another process indexes never fail and never see half-written items."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polylens.engine import open_index

pytestmark = pytest.mark.slow


def test_search_during_indexing(tmp_path: Path, samples_dir: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "photos").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(150):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            corpus / "photos" / f"{i}.png"
        )
    (corpus / "notes.md").write_text((samples_dir / "text" / "about-sqlite.md").read_text())
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "polylens.toml").write_text(
        'image_model = "fake-clip"\ntext_model = "fake-text"\nocr = false\nbatch_size = 4\ncommit_every = 8\n'
    )
    # Seed the index so the reader has something to open, then index the rest concurrently.
    with open_index(index_dir) as idx:
        idx.add([corpus / "notes.md"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "polylens", "index", str(corpus), "--index", str(index_dir), "-q"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    searches = 0
    seen_counts = set()
    probe = corpus / "photos" / "7.png"
    try:
        with open_index(index_dir, create=False) as reader:
            while proc.poll() is None and searches < 2000:
                for hit in reader.search("database", k=20) + reader.search(image=probe, k=20):
                    assert hit.path.startswith(str(corpus)) and Path(hit.path).is_file()
                    searches += 1
                seen_counts.add(reader.status().files)
                time.sleep(0.005)
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0
    assert searches > 20
    assert len(seen_counts) > 1, "the reader never saw the index grow"
    with open_index(index_dir, create=False) as reader:
        assert reader.status().files == 151
