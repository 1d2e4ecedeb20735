"""A full disk or a read-only index directory: a clear error, no traceback, a consistent
index, and a next run (with space) that indexes everything.

Real failures need mounts (a small tmpfs, a read-only bind mount: root in a sandbox or VM);
where mounting is not allowed those tests skip, and the simulated full disk below (store
writes failing with ENOSPC at every write in turn) still runs everywhere.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from _fault import (
    DiskBudget,
    budgeted_store,
    can_mount,
    index_command,
    make_corpus,
    read_only,
    resize_tmpfs,
    run_cli,
    run_index,
    search_command,
    tmpfs,
)
from _invariants import check_committed, check_consistent, files_under
from typer.testing import CliRunner

import polylens.store.lance
from polylens.cli import app
from polylens.engine import open_index
from polylens.errors import StoreError
from polylens.representations.image_text import ImageText
from polylens.store.base import ITEMS
from polylens.store.lance import LanceStore
from polylens.store.schema import fixed_schema

FAST_FLAGS = ["--image-model", "fake-clip", "--text-model", "fake-text", "--no-ocr"]


@pytest.fixture(scope="module")
def mountable(tmp_path_factory: pytest.TempPathFactory) -> bool:
    return can_mount(tmp_path_factory.mktemp("probe"))


def _small_corpus(root: Path, samples: Path, seed: int = 11):  # noqa: ANN202
    return make_corpus(root, samples, seed=seed, images=30, texts=14, pdfs=3, copies=5)


def _assert_clear_failure(done, *phrases: str) -> None:  # noqa: ANN001
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.lstrip().startswith("error:"), done.stderr[-2000:]
    assert any(p in done.stderr.lower() for p in phrases), done.stderr[-2000:]


# -- simulated: every store write in turn fails with ENOSPC --------------------------------
def test_enospc_at_every_store_write_then_resume(
    tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path / "corpus", None, seed=5, images=5, texts=4, pdfs=2, copies=2)
    expected = files_under(corpus.root)
    budget = DiskBudget(None)
    real = polylens.store.lance.LanceStore
    monkeypatch.setattr(
        polylens.store.lance, "LanceStore", lambda d: budgeted_store(d, budget, real)
    )
    runner = CliRunner()

    def index(index_dir: Path):  # noqa: ANN202
        args = ["index", str(corpus.root), "--index", str(index_dir), *FAST_FLAGS, "-q"]
        return runner.invoke(app, args)

    settings = "batch_size = 2\ncommit_every = 3\nworkers = 1\n"
    # How many writes a whole run makes, on a fresh index.
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "polylens.toml").write_text(settings)
    assert index(tmp_path / "probe").exit_code == 0
    total = budget.spent
    print(f"a whole run makes {total} store writes; each fails in turn")
    assert total > 15
    for allowed in range(total):
        index_dir = tmp_path / f"idx{allowed}"
        index_dir.mkdir()
        (index_dir / "polylens.toml").write_text(settings)
        budget.left = allowed
        result = index(index_dir)
        assert result.exit_code == 1, (allowed, result.output)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "the disk holding the index is full" in result.output, result.output
        assert "Traceback" not in result.output
        check_committed(index_dir)
        budget.left = None
        result = index(index_dir)
        assert result.exit_code == 0, (allowed, result.output)
        check_consistent(index_dir, expected)
        with open_index(index_dir, create=False) as idx:
            assert idx.search("lantern", k=5) is not None


# -- real: a tmpfs that fills up, then grows ----------------------------------------------
@pytest.mark.slow
def test_full_disk_gives_clear_error_then_next_run_indexes_everything(
    tmp_path: Path, samples_dir: Path, mountable: bool
) -> None:
    if not mountable:
        pytest.skip("cannot mount a tmpfs here (needs root); the simulated test covers it")
    corpus = _small_corpus(tmp_path / "corpus", samples_dir)
    expected = files_under(corpus.root)
    outcomes = []
    # From "cannot even write the settings" to "fails while committing items".
    for size_kb in (8, 40, 200, 700, 1500):
        index_dir = tmp_path / f"idx{size_kb}"
        with tmpfs(index_dir, size_kb):
            done = run_cli(index_command(index_dir, corpus.root))
            if done.returncode == 0:
                outcomes.append((size_kb, "fits"))
            else:
                _assert_clear_failure(done, "full", "no space left")
                outcomes.append((size_kb, done.stderr.strip().splitlines()[0][:120]))
            if (index_dir / "lance").is_dir():
                check_committed(index_dir)
            resize_tmpfs(index_dir, 64 * 1024)
            summary = run_index(index_dir, corpus.root)
            assert summary["failed"] == 0
            check_consistent(index_dir, expected)
            search = run_cli(search_command(index_dir, "lantern"))
            assert search.returncode == 0, search.stderr[-2000:]
    print("\n".join(f"{size} KiB: {what}" for size, what in outcomes))
    assert sum(1 for _, what in outcomes if what != "fits") >= 3


# -- real: a read-only index directory ----------------------------------------------------
@pytest.mark.slow
def test_read_only_index_dir_gives_clear_error_and_stays_consistent(
    tmp_path: Path, samples_dir: Path, mountable: bool
) -> None:
    if not mountable:
        pytest.skip("cannot bind-mount read-only here (needs root)")
    corpus = _small_corpus(tmp_path / "corpus", samples_dir)
    index_dir = tmp_path / "idx"
    run_index(index_dir, corpus.root)
    before = files_under(corpus.root)
    check_consistent(index_dir, before)
    corpus.mutate(8)
    corpus.add("img")
    with read_only(index_dir):
        done = run_cli(index_command(index_dir, corpus.root))
        _assert_clear_failure(done, "read-only", "not writable")
        check_consistent(index_dir, before)
        # Reading a read-only index still works.
        search = run_cli(search_command(index_dir, "lantern"))
        assert search.returncode == 0, search.stderr[-2000:]
    summary = run_index(index_dir, corpus.root)
    assert summary["failed"] == 0
    check_consistent(index_dir, files_under(corpus.root))


@pytest.mark.slow
def test_new_index_under_read_only_dir_gives_clear_error(
    tmp_path: Path, samples_dir: Path, mountable: bool
) -> None:
    if not mountable:
        pytest.skip("cannot bind-mount read-only here (needs root)")
    parent = tmp_path / "ro"
    parent.mkdir()
    with read_only(parent):
        done = run_cli(index_command(parent / "idx", samples_dir / "text"))
        _assert_clear_failure(done, "read-only")
        assert not (parent / "idx").exists()


# -- regressions for what the fault tests found --------------------------------------------
def test_collection_created_but_never_committed_is_recreated(tmp_path: Path) -> None:
    """A run killed (or out of space) inside create_table leaves a table directory with no
    committed version: it used to break every later run ("collection does not exist")."""
    store = LanceStore(tmp_path / "lance")
    store._db.create_table(ITEMS, schema=fixed_schema(ITEMS))
    versions = tmp_path / "lance" / f"{ITEMS}.lance" / "_versions"
    for manifest in versions.glob("*.manifest"):
        manifest.unlink()
    store = LanceStore(tmp_path / "lance")
    store.ensure_collection(ITEMS)
    store.upsert(ITEMS, [_item("a:t0", "hello world")])
    assert [r.row["id"] for r in store.search_text(ITEMS, "hello", 5)] == ["a:t0"]


def test_indexes_missing_after_a_killed_create_are_built(tmp_path: Path) -> None:
    """Killed between create_table and create_index: the next run builds the indexes (the
    BM25 index with its stemming and stop words) instead of trusting the table."""
    store = LanceStore(tmp_path / "lance")
    store._db.create_table(ITEMS, schema=fixed_schema(ITEMS))
    store = LanceStore(tmp_path / "lance")
    store.ensure_collection(ITEMS)
    columns = {tuple(i.columns) for i in store._table(ITEMS).list_indices()}
    assert {("id",), ("content_hash",), ("text",)} <= columns
    store.upsert(ITEMS, [_item("a:t0", "the running foxes")])
    assert [r.row["id"] for r in store.search_text(ITEMS, "fox run", 5)] == ["a:t0"]


def test_search_ignores_a_collection_never_committed(tmp_path: Path, samples_dir: Path) -> None:
    with open_index(
        tmp_path / "idx", image_model="fake-clip", text_model="fake-text", ocr=False
    ) as idx:
        idx.add([samples_dir / "text"])
    store = LanceStore(tmp_path / "idx" / "lance")
    store._db.drop_table(ImageText.collection)  # as if a killed run had only begun to create it
    store._db.create_table(ImageText.collection, schema=_vec_schema(48))
    for manifest in (tmp_path / "idx" / "lance" / "vec_image.lance" / "_versions").glob(
        "*.manifest"
    ):
        manifest.unlink()
    with open_index(tmp_path / "idx", create=False) as idx:
        assert idx.search("sqlite", k=5)


def test_reader_opened_before_first_run_sees_models_and_roots(
    tmp_path: Path, samples_dir: Path
) -> None:
    """A long-lived reader (a server, a search loop) opened on an index before its first
    run used to keep "no models" forever: image search refused, dense text never used."""
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    (index_dir / "polylens.toml").write_text("ocr = false\n")
    with open_index(index_dir, create=False) as reader:
        assert reader.search("database", k=5) == []
        with open_index(index_dir, image_model="fake-clip", text_model="fake-text") as writer:
            writer.add([samples_dir / "photos", samples_dir / "text"])
        hits = reader.search(image=samples_dir / "photos" / "cat.jpg", k=3)
        assert hits and hits[0].path.endswith("cat.jpg")
        assert set(reader.search("database", k=5)[0].sources) >= {"text", "bm25"}
        assert reader.status().roots == sorted(str(samples_dir / d) for d in ("photos", "text"))


def test_settings_file_is_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating an index that fails half-way through writing polylens.toml (disk full, or
    a kill) must not leave a truncated file that every later run rejects."""
    real_replace = os.replace

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    note = tmp_path / "note.txt"
    note.write_text("a note to index\n")
    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StoreError, match="no space left"):  # the first write creates it
        with open_index(tmp_path / "idx", image_model="fake-clip", text_model="fake-text") as idx:
            idx.add([note])
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(os.listdir(tmp_path / "idx")) == []
    with open_index(tmp_path / "idx", image_model="fake-clip", text_model="fake-text") as idx:
        assert idx.config.image_model == "fake-clip"
        assert idx.add([note]).added == 1
    assert (tmp_path / "idx" / "polylens.toml").read_text().count("\n") > 10


def _item(item_id: str, text: str) -> dict:
    return {
        "id": item_id,
        "content_hash": item_id.split(":")[0],
        "kind": "text",
        "page": None,
        "chunk": 0,
        "text": text,
        "text_source": "file",
        "width": None,
        "height": None,
    }


def _vec_schema(dim: int):  # noqa: ANN202
    from polylens.store.schema import vector_schema

    return vector_schema(dim)
