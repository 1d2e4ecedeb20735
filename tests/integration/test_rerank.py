"""The second stage: a cross-encoder loaded through the same path users hit (a tiny random
BERT cross-encoder saved here), re-ordering the first fused hits that have text."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _tiny_models import make_tiny_cross_encoder

from polylens.engine import open_index
from polylens.search.fusion import Fused
from polylens.search.rerank import rerank

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "tiny-ce")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("rerank")
    shutil.copytree(samples_dir, root / "corpus")
    with open_index(root / "idx", **FAST) as idx:
        idx.add([root / "corpus"])
    return root / "idx"


def test_only_hits_with_text_move_and_only_among_their_places() -> None:
    fused = [Fused(i, 1.0) for i in ("photo", "a", "b", "c", "tail")]
    texts = {"a": "alpha", "b": "bravo", "c": "charlie", "tail": "zulu"}
    model = SimpleNamespace(score=lambda q, ps: np.array([len(p) for p in ps], float))
    out = [f.id for f in rerank(fused, texts, "q", model, depth=4)]
    # charlie (7) > alpha = bravo (5, ties keep order); the photo and the tail stay put
    assert out == ["photo", "c", "a", "b", "tail"]


def test_search_reranks_by_the_cross_encoders_own_scores(
    index_dir: Path, cross_encoder: Path
) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    query = "how large can a database get"
    with open_index(index_dir, create=False, rerank=str(cross_encoder), rerank_depth=8) as idx:
        reranked = idx.search(query, k=8)
        plain = idx.search(query, k=8, rerank=False)
    assert not reranked.warnings
    assert {h.id for h in reranked} == {h.id for h in plain}
    with_text = [h for h in plain if h.snippet]
    assert len(with_text) >= 2
    # the reference: the same model through sentence-transformers directly
    reference = sentence_transformers.CrossEncoder(str(cross_encoder))
    ids = [h.id for h in plain]
    texts = {}
    with open_index(index_dir, create=False) as idx:
        for hit in plain:
            texts[hit.id] = idx.item(hit.id).text
    readable = [i for i in ids if texts[i].strip()]
    scores = reference.predict([(query, texts[i][:2000]) for i in readable])
    expected = [readable[n] for n in sorted(range(len(readable)), key=lambda n: -scores[n])]
    assert [h.id for h in reranked if texts[h.id].strip()] == expected


def test_a_reranker_that_cannot_load_warns_and_keeps_fused_order(index_dir: Path) -> None:
    with open_index(index_dir, create=False, rerank="hf-hub:nobody/no-such-reranker") as idx:
        hits = idx.search("SQLite", k=5)
        plain = idx.search("SQLite", k=5, rerank=False)
    assert [h.id for h in hits] == [h.id for h in plain]
    assert any("reranker hf-hub:nobody/no-such-reranker is unavailable" in w for w in hits.warnings)
