"""Late-interaction page retrieval through the user's code path: tiny random-weight
ColQwen2 and ColPali (tests/_tiny_colvision.py) loaded by path, real PDF pages and scans,
the first stage against exhaustive MaxSim, incremental runs, deletes and filters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polylens.encoders.registry import ModelRegistry
from polylens.engine import open_index
from polylens.errors import ConfigError, ItemNotFoundError
from polylens.search.maxsim import maxsim
from polylens.search.multivector_index import MultiVectorIndex
from polylens.search.patch_store import PatchStore
from polylens.store.base import Filter

LEXICAL = dict(image_model="none", text_model="none", ocr=False)


@pytest.fixture
def corpus(tmp_path: Path, samples_dir: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(samples_dir / "pdf", target / "pdf")
    shutil.copytree(samples_dir / "photos", target / "photos")
    return target


@pytest.mark.parametrize("model", ["tiny_colqwen2_dir", "tiny_colpali_dir"])
def test_pages_are_indexed_as_patch_vectors_and_searched_by_maxsim(
    corpus: Path, tmp_path: Path, model: str, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(model)
    index = tmp_path / "index"
    with open_index(index, page_model=str(path), **LEXICAL) as idx:
        summary = idx.add([corpus])
        assert summary.failed == 0
        # OCR is off here: the run says which pictures cannot be pages, and nothing else
        assert len(summary.warnings) == 1 and "only PDF pages" in summary.warnings[0]
        assert "late" in idx.representations
        status = {r.name: r for r in idx.status().representations}
        assert status["late"].rows == 15 and status["late"].available  # euro.pdf's pages
        hits = idx.search("euro currency symbol", k=15, retrievers=["late"])
        exact = idx.search("euro currency symbol", k=15, retrievers=["late"], exact=True)
    assert len(hits) == 15 and all(
        h.kind == "page" and h.sources == {"late": n + 1} for n, h in enumerate(hits)
    )
    # 15 pages: the first stage's candidates cover them all, so the order is exact
    assert [h.id for h in hits] == [h.id for h in exact]
    # and it is MaxSim of the model's own vectors, recomputed here from the store
    from polylens.encoders.registry import ModelRegistry

    encoder = ModelRegistry().load_page(str(path), device="cpu", batch_size=4, max_pixels=602_112)
    query = encoder.embed_queries(["euro currency symbol"])[0]
    with open_index(index, create=False) as idx:
        rows = idx._store.get("late_pages", None, ["id", "n", "dim", "vectors"])  # noqa: SLF001
    pages = {
        r["id"]: np.frombuffer(r["vectors"], np.float16).reshape(r["n"], r["dim"]) for r in rows
    }
    expected = maxsim(query, [pages[h.id] for h in exact])
    assert np.all(np.diff(expected) <= 1e-4)  # best first
    assert [round(h.score, 6) for h in exact] != []  # fused scores exist
    # the same from the command line, late only
    from typer.testing import CliRunner

    from polylens.cli import app

    args = ["search", "euro currency symbol", "--index", str(index), "-k", "15"]
    result = CliRunner().invoke(app, [*args, "--using", "late", "--exact", "--json"])
    assert result.exit_code == 0, result.output
    assert [h["id"] for h in json.loads(result.stdout)] == [h.id for h in exact]
    result = CliRunner().invoke(app, [*args, "--using", "nope"])
    assert result.exit_code == 2 and "nope" in result.output


def test_first_stage_candidates_are_scored_exactly(tmp_path: Path, tiny_colqwen2_dir: Path) -> None:
    """More pages than the first stage proposes: it chooses, and what it chose is ranked by
    exact MaxSim; ``exact`` ranks every page. (Random weights say nothing about how well
    the first stage agrees with exhaustive MaxSim: bench/multivector.py measures that.)"""
    from PIL import ImageDraw

    from polylens.search.searcher import SearchRequest

    corpus = tmp_path / "scans"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    words = "engine wing flutter boundary layer pressure drag lift shock heat nozzle".split()
    for n in range(64):
        page = Image.new("RGB", (224, 280), (255, 255, 255))
        draw = ImageDraw.Draw(page)
        for line in range(6):
            draw.text((10, 10 + 40 * line), " ".join(rng.choice(words, 3)), fill=(0, 0, 0))
        draw.rectangle((150, 240, 150 + n % 60, 270), fill=(n * 5 % 255, 80, 160))
        page.save(corpus / f"page-{n:03d}.png")
    index = tmp_path / "index"
    settings = dict(page_model=str(tiny_colqwen2_dir), page_min_text=0, page_candidates=12)
    with open_index(index, **settings, **LEXICAL) as idx:
        assert idx.add([corpus]).failed == 0
        encoder = ModelRegistry().load_page(
            str(tiny_colqwen2_dir), device="cpu", batch_size=4, max_pixels=602_112
        )
        pages = _stored_pages(idx)
        for query in ("wing flutter", "shock nozzle heat"):
            tokens = encoder.embed_queries([query])[0]
            truth = dict(zip(pages, maxsim(tokens, list(pages.values())), strict=True))
            searcher = idx._searcher()  # noqa: SLF001 - the list before fusion
            fast = searcher.lists(SearchRequest(text=query, k=10, retrievers=("late",)))["late"]
            exact = searcher.lists(
                SearchRequest(text=query, k=10, retrievers=("late",), exact=True)
            )["late"]
            # the search asks for 50 (fusion depth): candidates = max(page_candidates, 50)
            assert len(exact.ids) == len(fast.ids) == 50
            for ranked in (fast, exact):
                expected = [truth[i] for i in ranked.ids]
                assert np.allclose(ranked.scores, expected, atol=2e-3)
                assert np.all(np.diff(ranked.scores) <= 1e-6)
            best = sorted(truth, key=truth.__getitem__, reverse=True)
            assert exact.ids == best[:50]


def _stored_pages(idx: object) -> dict[str, np.ndarray]:
    rows = idx._store.get("late_pages", None, ["id", "n", "dim", "vectors"])  # noqa: SLF001
    return {
        r["id"]: np.frombuffer(r["vectors"], np.float16).reshape(r["n"], r["dim"]) for r in rows
    }


def _current(index: Path) -> tuple[Path, list[str]]:
    """The derived index's current generation folder and its rows' item ids."""
    late = index / "late"
    generation = late / json.loads((late / "CURRENT").read_text())["generation"]
    return generation, json.loads((generation / "rows.json").read_text())


def test_incremental_runs_deletes_and_filters(
    corpus: Path, tmp_path: Path, tiny_colpali_dir: Path
) -> None:
    index = tmp_path / "index"
    settings = dict(page_model=str(tiny_colpali_dir), **LEXICAL)
    with open_index(index, **settings) as idx:
        idx.add([corpus])
    generation, saved = _current(index)
    assert len(saved) == 15
    # a new PDF: its pages are appended to the derived index, nothing rebuilt
    shutil.copy(corpus / "pdf" / "euro.pdf", corpus / "pdf" / "euro-copy.pdf")
    scan = Image.new("RGB", (600, 800), "white")
    scan.save(corpus / "photos" / "blank.png")
    with open_index(index, create=False, **settings) as idx:
        summary = idx.add([corpus])
        assert summary.failed == 0
        hits = idx.search("euro", k=50, retrievers=["late"])
    assert len(hits) == 15  # an exact copy is the same items: other_paths, no new pages
    assert all(h.other_paths for h in hits)
    assert _current(index)[0] == generation  # nothing new: nothing rewritten
    # the PDF goes: its pages leave the results and are masked in the derived index
    (corpus / "pdf" / "euro.pdf").unlink()
    (corpus / "pdf" / "euro-copy.pdf").unlink()
    with open_index(index, create=False, **settings) as idx:
        idx.add([corpus])
        assert idx.search("euro", k=50, retrievers=["late"]) == []
        status = {r.name: r for r in idx.status().representations}
    assert status["late"].rows == 0
    assert not (index / "late").exists()  # no pages left: no derived files either


def test_a_crashed_writers_leftovers_are_hidden_from_readers_and_dropped_by_the_next(
    corpus: Path, tmp_path: Path, tiny_colpali_dir: Path
) -> None:
    """A writer killed after appending to the patch store and writing a generation, before
    naming it current: readers see the last current generation, untouched; the next
    writer drops the leftovers."""
    index = tmp_path / "index"
    settings = dict(page_model=str(tiny_colpali_dir), **LEXICAL)
    with open_index(index, **settings) as idx:
        idx.add([corpus])
        before = idx.search("euro", k=5, retrievers=["late"])
    generation, saved = _current(index)
    patches = (
        generation / json.loads((generation / "index.json").read_text())["patches"]
    ).resolve()
    size = (patches / "patches.f16").stat().st_size
    crashed = MultiVectorIndex.load(generation)
    crashed.add([np.ones((7, crashed.patches.dim), np.float32)])
    crashed.save(index / "late" / "gen-99", copy_patches=False)
    with open_index(index, create=False, **settings) as idx:  # a reader
        assert idx.search("euro", k=5, retrievers=["late"]) == before
    assert (patches / "patches.f16").stat().st_size > size  # the reader truncated nothing
    assert _current(index) == (generation, saved)
    with open_index(index, create=False, **settings) as idx:  # the next writer
        idx.add([corpus])
        assert idx.search("euro", k=5, retrievers=["late"]) == before
    generation2, saved2 = _current(index)
    assert saved2 == saved and not (index / "late" / "gen-99").exists()
    assert len(PatchStore.open(patches)) == len(saved)


def test_without_late_drops_its_files(corpus: Path, tmp_path: Path, tiny_colpali_dir: Path) -> None:
    index = tmp_path / "index"
    with open_index(index, page_model=str(tiny_colpali_dir), **LEXICAL) as idx:
        idx.add([corpus])
    assert (index / "late").is_dir()
    with open_index(index, create=False, without=("late",), **LEXICAL) as idx:
        idx.add([corpus])
        assert "late" not in idx.representations
    assert not (index / "late").exists()


def test_a_page_model_that_is_not_one_is_refused_with_a_reason(
    corpus: Path, tmp_path: Path, tiny_clip_dir: Path
) -> None:
    with open_index(tmp_path / "index", page_model=str(tiny_clip_dir), **LEXICAL) as idx:
        with pytest.raises(ConfigError, match="clip model; a page model must be ColQwen2 or"):
            idx.add([corpus])


def test_heatmap_of_a_page_over_the_api(
    corpus: Path, tmp_path: Path, tiny_colqwen2_dir: Path
) -> None:
    pytest.importorskip(
        "fastapi", reason="the server extra is needed: pip install 'polylens[server]'"
    )
    from fastapi.testclient import TestClient

    from polylens.server.app import create_app

    index = tmp_path / "index"
    with open_index(index, page_model=str(tiny_colqwen2_dir), **LEXICAL) as idx:
        idx.add([corpus])
        page = idx.search("euro", k=1, kind="page")[0]
        photos = idx._store.get("items", Filter(kinds=("image",)), ["id"])  # noqa: SLF001
    with TestClient(create_app(index, warm=False)) as client:
        found = client.get(f"/api/items/{page.id}/heatmap", params={"q": "euro currency"})
        assert found.status_code == 200, found.text
        heat = found.json()
        assert heat["rows"] * heat["cols"] == len(heat["values"]) > 0
        assert all(0.0 <= v <= 1.0 for v in heat["values"])
        assert heat["tokens_on_page"] == 0 or max(heat["values"]) == 1.0
        assert client.get(f"/api/items/{page.id}/heatmap", params={"q": " "}).status_code == 422
        missing = client.get("/api/items/nope/heatmap", params={"q": "x"})
        assert missing.status_code == 404
        photo = photos[0]["id"]  # a photo is no page: no vectors to map
        assert client.get(f"/api/items/{photo}/heatmap", params={"q": "x"}).status_code == 404


def test_heatmap_needs_page_vectors(corpus: Path, tmp_path: Path) -> None:
    with open_index(tmp_path / "index", **LEXICAL) as idx:
        idx.add([corpus])
        page = idx.search("euro", k=1, kind="page")[0]
        with pytest.raises(ItemNotFoundError, match="--page-model"):
            idx.heatmap(page.id, "euro")


def test_naming_a_page_model_adds_late_unless_left_out(corpus: Path, tmp_path: Path) -> None:
    with open_index(tmp_path / "a", **LEXICAL) as idx:
        idx.add([corpus / "pdf"])
        assert idx.representations == ["image", "text", "bm25", "phash"]
    with open_index(tmp_path / "b", page_model="fake-page", **LEXICAL) as idx:
        idx.add([corpus / "pdf"])
        assert idx.representations[-1] == "late"
    with open_index(tmp_path / "c", page_model="fake-page", without=("late",), **LEXICAL) as idx:
        idx.add([corpus / "pdf"])
        assert "late" not in idx.representations


@pytest.mark.parametrize("layout", ["v1-parquet", "v2-beir"])
def test_eval_on_a_vidore_set_offers_the_late_configuration(
    tmp_path: Path, samples_dir: Path, tiny_colpali_dir: Path, layout: str
) -> None:
    """A ViDoRe-format set (pages rendered from a real PDF, queries from their text), in
    v1's one-parquet layout and v2's BEIR folders, through `polylens eval` with a page
    model, end to end."""
    import io
    import json as jsonlib

    import pyarrow as pa
    import pyarrow.parquet as pq
    import pypdfium2
    from typer.testing import CliRunner

    from polylens.cli import app

    pdf = pypdfium2.PdfDocument(str(samples_dir / "pdf" / "euro.pdf"))
    rows = {"query": [], "image": [], "image_filename": []}
    for n in range(6):
        page = pdf[n]
        buffer = io.BytesIO()
        page.render(scale=0.6).to_pil().save(buffer, format="PNG")
        words = page.get_textpage().get_text_range().split()[5:12]
        rows["query"].append(" ".join(words))
        rows["image"].append({"bytes": buffer.getvalue(), "path": None})
        rows["image_filename"].append(f"euro-{n + 1}.png")
    if layout == "v1-parquet":
        data = tmp_path / "test.parquet"
        pq.write_table(pa.table(rows), data)
    else:
        data = tmp_path / "pages_v2"
        subsets = {
            "corpus": {"corpus-id": list(range(6)), "image": rows["image"]},
            "queries": {"query-id": list(range(6)), "query": rows["query"]},
            "qrels": {"query-id": list(range(6)), "corpus-id": list(range(6)), "score": [1] * 6},
        }
        for name, columns in subsets.items():
            (data / name).mkdir(parents=True)
            pq.write_table(pa.table(columns), data / name / "test-00000-of-00001.parquet")
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(data),
            "--work",
            str(tmp_path / "work"),
            "--image-model",
            "none",
            "--text-model",
            "none",
            "--no-ocr",
            "--page-model",
            str(tiny_colpali_dir),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = jsonlib.loads(result.stdout)
    by_name = {r["name"]: r for r in report["results"]}
    assert "late" in by_name and by_name["late"]["retrievers"] == ["late"]
    assert 0.0 <= by_name["late"]["metrics"]["ndcg@10"] <= 1.0
