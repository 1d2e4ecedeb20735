"""Confidence through every path: exact vectors and a (fp16, IVF) ANN index give the same
background, the one-shot store path and the in-memory read model the same numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from polylens.engine import open_index

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)
QUERIES = ("SQLite database engine", "euro conversion rates", "zzzxqv qwvprt")


def _confidences(index_dir: Path, *, memory: bool, **settings: object) -> dict:
    with open_index(index_dir, create=False, serve_from_memory=memory, **settings) as idx:
        if memory:
            assert idx.warm()
            part = idx._searcher().reader.part("text")  # noqa: SLF001
            uses_ann = part.index.ann is not None
            assert uses_ann == ("ann_min_rows" in settings)
            assert part.bank is not None and len(part.bank) >= 2
        out = {}
        for query in QUERIES:
            hits = idx.search(query, k=5)
            out[query] = ([h.id for h in hits], [h.confidence for h in hits], hits.no_good_match)
        return out


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("confidence")
    shutil.copytree(samples_dir, root / "corpus")
    with open_index(root / "idx", **FAST) as idx:
        idx.add([root / "corpus"])
    return root / "idx"


def test_store_and_read_model_agree(index_dir: Path) -> None:
    one_shot = _confidences(index_dir, memory=False)
    served = _confidences(index_dir, memory=True)
    assert one_shot == served
    for ids, confidences, _ in one_shot.values():
        assert ids and all(c is not None and 0.0 <= c <= 1.0 for c in confidences)


def test_an_ann_index_gives_the_same_confidence(index_dir: Path) -> None:
    exact = _confidences(index_dir, memory=True)
    ann = _confidences(index_dir, memory=True, ann_min_rows=8)
    for query, (ids, confidences, verdict) in exact.items():
        ann_ids, ann_confidences, ann_verdict = ann[query]
        assert ann_verdict == verdict, query
        by_id = dict(zip(ann_ids, ann_confidences, strict=True))
        for item_id, confidence in zip(ids, confidences, strict=True):
            if item_id in by_id:
                assert by_id[item_id] == pytest.approx(confidence, abs=0.02), (query, item_id)
