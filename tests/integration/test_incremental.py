"""Re-runs do only new or changed work; removed files leave; moves keep their embeddings."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from _invariants import check_consistent, files_under

from polylens.engine import Index


def test_first_run_then_nothing_to_do(fast_index: Index, corpus: Path) -> None:
    first = fast_index.add([corpus])
    assert (first.added, first.failed) == (11, 0)
    rows = check_consistent(fast_index.path, files_under(corpus))
    assert {r["kind"] for r in rows["items"]} == {"image", "page", "text"}
    again = fast_index.add([corpus])
    assert (again.added, again.updated, again.unchanged, again.items_written) == (0, 0, 11, 0)


def test_changed_file_is_re_encoded_and_old_content_dropped(
    fast_index: Index, corpus: Path
) -> None:
    fast_index.add([corpus])
    md = corpus / "text" / "about-sqlite.md"
    md.write_text("# Replaced\n\nA page about gliders and thermals.\n")
    summary = fast_index.add([corpus])
    assert (summary.updated, summary.unchanged, summary.items_written) == (1, 10, 1)
    check_consistent(fast_index.path, files_under(corpus))
    assert fast_index.search("gliders thermals", k=1)[0].path == str(md)
    assert not [h for h in fast_index.search("SQLite", k=20) if h.path == str(md)]


def test_removed_file_leaves_the_index(fast_index: Index, corpus: Path) -> None:
    fast_index.add([corpus])
    (corpus / "pdf" / "euro.pdf").unlink()
    summary = fast_index.add([corpus])
    assert summary.removed == 1
    rows = check_consistent(fast_index.path, files_under(corpus))
    assert not [r for r in rows["items"] if r["kind"] == "page"]


def test_moved_file_keeps_its_embeddings(fast_index: Index, corpus: Path) -> None:
    fast_index.add([corpus])
    before = {h.id for h in fast_index.search("euro", k=50, kind="page")}
    (corpus / "archive").mkdir()
    shutil.move(corpus / "pdf" / "euro.pdf", corpus / "archive" / "renamed.pdf")
    summary = fast_index.add([corpus])
    assert (summary.moved, summary.removed, summary.items_written) == (1, 0, 0)
    check_consistent(fast_index.path, files_under(corpus))
    hits = fast_index.search("euro", k=50, kind="page")
    assert {h.id for h in hits} == before
    assert {h.path for h in hits} == {str(corpus / "archive" / "renamed.pdf")}


def test_copies_share_content_and_report_every_path(fast_index: Index, corpus: Path) -> None:
    shutil.copy(corpus / "photos" / "cat.jpg", corpus / "photos" / "cat-copy.jpg")
    summary = fast_index.add([corpus])
    assert summary.added == 12
    rows = check_consistent(fast_index.path, files_under(corpus))
    assert len([r for r in rows["items"] if r["kind"] == "image"]) == 7  # 8 files, 7 contents
    hits = fast_index.search(image=corpus / "photos" / "cat.jpg", k=1)
    assert {hits[0].path, *hits[0].other_paths} == {
        str(corpus / "photos" / "cat.jpg"),
        str(corpus / "photos" / "cat-copy.jpg"),
    }


def test_touched_file_is_not_re_encoded(fast_index: Index, corpus: Path) -> None:
    fast_index.add([corpus])
    target = corpus / "photos" / "coffee.jpg"
    later = time.time() + 100
    os.utime(target, (later, later))
    summary = fast_index.add([corpus])
    assert (summary.unchanged, summary.items_written) == (11, 0)
    third = fast_index.add([corpus])  # the new mtime was recorded: not even re-hashed
    assert third.stage_seconds.get("scan_hash", 0) < 5


def test_roots_are_independent(fast_index: Index, corpus: Path) -> None:
    fast_index.add([corpus / "photos"])
    fast_index.add([corpus / "text"])
    rows = check_consistent(
        fast_index.path, files_under(corpus / "photos") | files_under(corpus / "text")
    )
    assert len(rows["files"]) == 7
    shutil.rmtree(corpus / "text")
    fast_index.add([corpus / "photos"])  # does not touch files under the other root
    assert fast_index.status().files == 7


def test_index_dir_inside_the_corpus_is_not_indexed(corpus: Path) -> None:
    from polylens.engine import open_index

    with open_index(
        corpus / "myindex", image_model="fake-clip", text_model="fake-text", ocr=False
    ) as idx:
        summary = idx.add([corpus])
        assert summary.added == 11 and summary.failed == 0
