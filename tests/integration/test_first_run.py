"""A newcomer's first hour (issue 11): an offline image model, bad arguments, quiet calls.

The image model is a tiny random CLIP of the real architecture, loaded from a local
directory through the user's code path. "Unavailable" is a directory that does not
exist yet; making it exist is the model becoming available.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from polylens.engine import open_index
from polylens.errors import IndexMismatchError, InputError
from polylens.ingest.events import ProgressEvents
from polylens.representations.image_text import ImageText
from polylens.store.base import ITEMS, Filter

TEXT = {"text_model": "fake-text", "ocr": False}


class Recorder(ProgressEvents):
    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None]] = []

    def phase(self, what: str, total: int | None = None) -> None:
        self.phases.append((what, total))


@pytest.fixture
def mixed(tmp_path: Path, samples_dir: Path) -> Path:
    """Photos, a PDF and text: items of every kind."""
    root = tmp_path / "corpus"
    for part in ("photos", "pdf", "text"):
        shutil.copytree(samples_dir / part, root / part)
    return root


def _image_vector_ids(idx) -> set[str]:  # noqa: ANN001
    store = idx._store  # noqa: SLF001
    if not store.has_collection(ImageText.collection):
        return set()
    return set(store.scan(ImageText.collection, ["item_id"]).column("item_id").to_pylist())


def _needing_image_vectors(idx) -> set[str]:  # noqa: ANN001
    rows = idx._store.get(ITEMS, None, ["id", "kind", "text"])  # noqa: SLF001
    return {r["id"] for r in rows if r["kind"] != "text" or r["text"].strip()}


def test_unavailable_model_is_one_line_then_back_filled(
    tmp_path: Path, mixed: Path, tiny_clip_dir: Path
) -> None:
    later = tmp_path / "models" / "clip"  # not there yet: the model is "offline"
    index = tmp_path / "idx"
    with open_index(index, image_model=str(later), **TEXT) as idx:
        first = idx.add([mixed])
        assert first.failed == 0 and first.added == 8
        model_lines = [w for w in first.warnings if "image model" in w]
        assert len(model_lines) == 1 and "\n" not in model_lines[0]
        assert "model directory is missing" in model_lines[0]
        assert _image_vector_ids(idx) == set()
        status = idx.status()
        image = next(m for m in status.models if m.role == "image")
        assert not image.available and image.summary and len(image.summary) < 80
        assert not status.image_search.available
        assert "no image embeddings" in (status.image_search.reason or "")

    # The same index, nothing changed, the model still missing: tried once, said once.
    with open_index(index, **TEXT) as idx:
        again = idx.add([mixed])
        assert (again.unchanged, again.items_written, again.items_backfilled) == (8, 0, 0)
        assert sum("image model" in w for w in again.warnings) == 1

    # Now the model is there: the next run fills in the vectors of every item it reads,
    # decoding pixels again for images and pages only, and rewrites no item row.
    shutil.copytree(tiny_clip_dir, later)
    items_version = None
    with open_index(index, **TEXT) as idx:
        items_version = idx._store._table(ITEMS).version  # noqa: SLF001
        events = Recorder()
        filled = idx.add([mixed], events=events)
        assert filled.items_written == 0 and filled.warnings == []
        needed = _needing_image_vectors(idx)
        assert filled.items_backfilled == len(needed) > 10
        assert _image_vector_ids(idx) == needed
        assert idx._store._table(ITEMS).version == items_version  # noqa: SLF001
        assert ("filling in image vectors", len(needed)) in events.phases
        status = idx.status()
        assert status.image_search.available
        assert next(m for m in status.models if m.role == "image").reason is None
        cat = mixed / "photos" / "cat.jpg"
        hits = idx.search(image=cat, k=1)
        assert hits[0].path == str(cat) and hits.warnings == []
        back_filled = idx._store.get(ImageText.collection, Filter(ids=(hits[0].id,)), ["vector"])

    # A back-filled vector is the one a fresh index computes for the same picture.
    with open_index(tmp_path / "fresh", image_model=str(later), **TEXT) as fresh:
        fresh.add([mixed / "photos"])
        direct = fresh._store.get(ImageText.collection, Filter(ids=(hits[0].id,)), ["vector"])
    np.testing.assert_allclose(back_filled[0]["vector"], direct[0]["vector"], atol=1e-5)


def test_role_without_vectors_may_switch_model(tmp_path: Path, mixed: Path) -> None:
    index = tmp_path / "idx"
    with open_index(index, image_model=str(tmp_path / "missing"), **TEXT) as idx:
        idx.add([mixed / "text"])
    # No image vectors yet: `none` is allowed and recorded, no more retries or warnings.
    with open_index(index, image_model="none", **TEXT) as idx:
        summary = idx.add([mixed / "text"])
        assert summary.warnings == []
        assert idx._meta.record("image").resolved == "none"  # noqa: SLF001
    # ... and so is a model that loads, which then fills in the existing items.
    with open_index(index, image_model="fake-clip", **TEXT) as idx:
        summary = idx.add([mixed / "text"])
        assert summary.items_backfilled > 0
    # Once vectors exist, the role's model is fixed.
    with pytest.raises(IndexMismatchError, match="cannot be mixed"):
        open_index(index, image_model="none", **TEXT)


def test_image_and_text_on_index_without_image_vectors(tmp_path: Path, mixed: Path) -> None:
    cat = mixed / "photos" / "cat.jpg"
    with open_index(tmp_path / "idx", image_model="none", **TEXT) as idx:
        idx.add([mixed])
        hits = idx.search("SQLite database", image=cat, k=3)
        assert hits and hits[0].path.endswith("about-sqlite.md")
        assert len(hits.warnings) == 1
        assert hits.warnings[0].startswith("image search is unavailable: the index was built")
        with pytest.raises(InputError, match="cannot search by image: the index was built"):
            idx.search(image=cat)


def test_arguments_and_query_image_checked_before_models_load(tmp_path: Path, mixed: Path) -> None:
    with open_index(tmp_path / "idx", image_model="fake-clip", **TEXT) as idx:
        idx.add([mixed / "text"])
    with open_index(tmp_path / "idx", **TEXT) as idx:
        with pytest.raises(InputError, match=r"unknown kind\(s\) \['audio'\]"):
            idx.search("x", kind="audio")
        with pytest.raises(InputError, match="query image .*nope.jpg: not found"):
            idx.search("x", image=tmp_path / "nope.jpg")
        notes = mixed / "text" / "about-sqlite.md"
        with pytest.raises(InputError, match=f"query image {notes}: not a recognised image"):
            idx.search(image=notes)
        with pytest.raises(InputError, match="k must be at least 1"):
            idx.search("x", k=0)
        assert not idx.model_loaded("image")
        assert not idx.model_loaded("text")
        assert "_store" not in idx.__dict__  # not even the store was opened


def test_refused_add_creates_nothing(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    with open_index(index, image_model="fake-clip", **TEXT) as idx:
        with pytest.raises(InputError, match="does not exist"):
            idx.add([tmp_path / "no" / "such" / "path"])
    assert not index.exists()


def test_phases_are_reported_as_they_happen(tmp_path: Path, mixed: Path) -> None:
    events = Recorder()
    with open_index(tmp_path / "idx", image_model="fake-clip", **TEXT) as idx:
        idx.add([mixed / "text"], events=events)
    names = [what for what, _ in events.phases]
    assert names == [
        "scanning",
        "loading image model fake-clip",
        "loading text model fake-text",
        "reading and encoding",
        "writing",
        "optimising indexes",
    ]
    assert events.phases[3][1] == 2  # two files to read and encode


def test_has_more_tells_a_full_page_from_the_last(tmp_path: Path, mixed: Path) -> None:
    with open_index(tmp_path / "idx", image_model="fake-clip", **TEXT) as idx:
        idx.add([mixed])
        everything = idx.search("the", k=1000)
        assert not everything.has_more
        first = idx.search("the", k=3)
        assert first.has_more and len(first) == 3
        last = idx.search("the", k=3, offset=len(everything) - 2)
        assert len(last) == 2 and not last.has_more


@pytest.mark.slow
def test_library_calls_print_nothing(tmp_path: Path, mixed: Path, tiny_clip_dir: Path) -> None:
    """No progress bar or load report from transformers / sentence-transformers on stdout
    or stderr: the real MiniLM and a CLIP directory load through the user's path."""
    script = textwrap.dedent(
        f"""
        import polylens
        with polylens.open({str(tmp_path / "idx")!r}, image_model={str(tiny_clip_dir)!r},
                           text_model="minilm", ocr=False) as idx:
            idx.add([{str(mixed / "text")!r}])
        with polylens.open({str(tmp_path / "idx")!r}) as idx:
            assert idx.search("database engine", k=2)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
