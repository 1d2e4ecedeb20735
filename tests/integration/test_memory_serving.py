"""Searches answered from the in-memory read model equal those answered by the store,
and a read model never outlives the store version it was built from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FAST

from polylens.engine import open_index
from polylens.types import Hit

QUERIES = [
    dict(query="euro conversion rates"),
    dict(query="database size limits", kind="text"),
    dict(query="coins", kind=("image", "page")),
    dict(query="coins", path_prefix="pdf"),
    dict(query="cat", retrievers=("image",)),
    dict(query="sqlite", offset=2, k=3),
]


def _key(hits: list[Hit]) -> list[tuple]:
    return [(h.id, h.path, h.kind, h.page, round(h.score, 5), h.snippet) for h in hits]


def _resolve(query: dict, corpus: Path) -> dict:
    if "path_prefix" in query:
        return {**query, "path_prefix": str(corpus / query["path_prefix"])}
    return query


@pytest.fixture
def built(tmp_path: Path, corpus: Path) -> tuple[Path, Path]:
    with open_index(tmp_path / "index", **FAST) as idx:
        idx.add([corpus])
    return tmp_path / "index", corpus


@pytest.mark.parametrize("min_rows", [1_000_000, 1], ids=["exact", "ann"])
def test_memory_answers_equal_store_answers(built: tuple[Path, Path], min_rows: int) -> None:
    index_dir, corpus = built
    with open_index(index_dir, serve_from_memory=False, ann_min_rows=min_rows) as cold:
        expected = [_key(cold.search(**_resolve(q, corpus))) for q in QUERIES]
        item = cold.search("cat", kind="image", k=1)[0].id
        expected_similar = _key(cold.similar(item, k=5))
    with open_index(index_dir, ann_min_rows=min_rows) as warm:
        if min_rows == 1:
            warm.optimize()  # saves the ANN indexes the read model loads
            assert (index_dir / "ann" / "vec_image.faiss").is_file()
        assert warm.warm()
        assert warm._keeper.current(start_build=False) is not None
        got = [_key(warm.search(**_resolve(q, corpus))) for q in QUERIES]
        got_similar = _key(warm.similar(item, k=5))
    if min_rows == 1:
        # The ANN index stores fp16 vectors: near-ties may swap places, the results may not change.
        assert [sorted(g) for g in got] == [sorted(e) for e in expected] or [
            {h[0] for h in g} for g in got
        ] == [{h[0] for h in e} for e in expected]
        assert {h[0] for h in got_similar} == {h[0] for h in expected_similar}
    else:
        assert got == expected
        assert got_similar == expected_similar
    assert any(expected), "the queries found nothing; the comparison would be empty"


def test_a_stale_read_model_is_never_served(built: tuple[Path, Path], samples_dir: Path) -> None:
    index_dir, corpus = built
    with open_index(index_dir, serve_from_memory=False) as idx:
        assert idx.warm()
        before = idx.search("cat", k=50)
        # A write moves the store on: the model built before it must not answer.
        shutil.rmtree(corpus / "pdf")
        idx.add([corpus])
        assert idx._keeper.current(start_build=False) is None
        after = idx.search("cat", k=50)
        assert not [h for h in after if "/pdf/" in h.path]
        assert [h for h in before if "/pdf/" in h.path]
        assert idx.warm()
        assert _key(idx.search("cat", k=50)) == _key(after)


def test_first_search_builds_the_read_model_in_the_background(built: tuple[Path, Path]) -> None:
    index_dir, _ = built
    with open_index(index_dir) as idx:
        first = idx.search("euro")
        idx._keeper.wait(timeout=60)
        assert idx._keeper.current(start_build=False) is not None
        assert _key(idx.search("euro")) == _key(first)


def test_ann_indexes_follow_deletions_and_additions(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    index_dir, corpus = built
    with open_index(index_dir, ann_min_rows=1) as idx:
        idx.optimize()
        ann_file = index_dir / "ann" / "vec_image.faiss"
        stamp = ann_file.stat().st_mtime_ns
        idx.optimize()  # nothing changed: the saved index is not rewritten
        assert ann_file.stat().st_mtime_ns == stamp
        shutil.move(corpus / "photos", tmp_path / "photos-elsewhere")
        idx.add([corpus])  # a third of the vectors die: the index is rebuilt and saved
        idx.warm()
        hits = idx.search("cat", k=50, retrievers=("image",))
        assert hits and not [h for h in hits if "/photos/" in h.path]
        shutil.move(tmp_path / "photos-elsewhere", corpus / "photos")
        idx.add([corpus])
        idx.warm()
        hits = idx.search("cat", k=50, retrievers=("image",))
        assert [h for h in hits if "/photos/" in h.path]
