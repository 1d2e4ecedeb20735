"""A generated corpus of malformed, hostile and unusual files (tests/_malformed.py).

Each case is either indexed correctly or reported with a reason; the run completes, the
index is consistent afterwards, and time and memory stay bounded. The corpus is indexed
once (module fixture) with the fast fake encoders; each case is then checked on its own.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from _files import jpeg_bytes
from _invariants import check_consistent
from _malformed import (
    BIG_LEGAL_SIDE,
    GIF_FRAMES,
    PDF_PAGES,
    Case,
    animated_gif,
    build_corpus,
    pdf_document,
)
from conftest import FAST

from polylens.engine import Index, open_index
from polylens.ingest.units import UnitMaker
from polylens.store.base import FILES, ITEMS
from polylens.types import RunSummary

MAX_RSS_GROWTH = 1_500 << 20  # bytes: generous; the old decoder needed ~1.7 GB for one file
MAX_SECONDS = 90.0

# Files that change under the indexer between planning and decoding.
RACES = [
    Case("vanishes-before-decode.jpg", "failed", reason="^cannot read: No such file"),
    Case("vanishes-after-decode.txt", "failed", reason="^file vanished while being indexed"),
    Case("changes-during-decode.txt", "failed", reason="^file changed while being indexed"),
    Case("vanishes-before-open.pdf", "failed", reason="^cannot read: No such file"),
]


@dataclass
class Run:
    root: Path
    index_dir: Path
    cases: dict[str, Case]
    summary: RunSummary
    seconds: float
    rss_growth: int
    rows: dict[str, list[dict]]


class PeakRss:
    """Samples this process's RSS on a thread; ``growth`` is the peak over the start."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.start_rss = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start_rss


def _install_races(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Hooks in the decode stage: delete or change a file right before/after decoding."""
    (root / "vanishes-before-decode.jpg").write_bytes(jpeg_bytes(colour=(1, 2, 3)))
    (root / "vanishes-after-decode.txt").write_text("this file is deleted once decoded\n")
    (root / "changes-during-decode.txt").write_text("this file grows while it is decoded\n")
    (root / "vanishes-before-open.pdf").write_bytes(pdf_document(["gone before opened"]))
    image, text, page_count = UnitMaker.image, UnitMaker.text, UnitMaker.pdf_page_count

    def racing_image(self: UnitMaker, path: str, content_hash: str) -> list:
        if path.endswith("vanishes-before-decode.jpg"):
            os.unlink(path)
        return image(self, path, content_hash)

    def racing_text(self: UnitMaker, path: str, content_hash: str, size: int) -> list:
        units = text(self, path, content_hash, size)
        if path.endswith("vanishes-after-decode.txt"):
            os.unlink(path)
        elif path.endswith("changes-during-decode.txt"):
            with open(path, "a") as handle:
                handle.write("and more, written while the indexer was reading\n")
        return units

    def racing_page_count(self: UnitMaker, path: str) -> int:
        if path.endswith("vanishes-before-open.pdf"):
            os.unlink(path)
        return page_count(self, path)

    monkeypatch.setattr(UnitMaker, "image", racing_image)
    monkeypatch.setattr(UnitMaker, "text", racing_text)
    monkeypatch.setattr(UnitMaker, "pdf_page_count", racing_page_count)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("malformed")
    root = base / "corpus"
    cases = {c.name: c for c in build_corpus(root, base / "outside")}
    cases.update({c.name: c for c in RACES})
    with pytest.MonkeyPatch.context() as monkeypatch:
        _install_races(monkeypatch, root)
        with open_index(base / "index", **FAST) as index:
            with PeakRss() as rss:
                started = time.perf_counter()
                summary = index.add([root])
                seconds = time.perf_counter() - started
    indexed = {str(root / c.name) for c in cases.values() if c.outcome == "indexed"}
    rows = check_consistent(base / "index", indexed)
    yield Run(root, base / "index", cases, summary, seconds, rss.growth, rows)


def _case_names() -> list[str]:
    cases = build_corpus(Path("/nonexistent"), Path("/nonexistent"), dry_run=True)
    return [c.name for c in cases] + [c.name for c in RACES]


CASE_NAMES = _case_names()


def test_the_corpus_is_big_enough() -> None:
    assert len(CASE_NAMES) >= 30


@pytest.mark.parametrize("name", CASE_NAMES, ids=lambda n: re.sub(r"\W", "_", n)[:40])
def test_case(run: Run, name: str) -> None:
    case = run.cases[name]
    path = str(run.root / name)
    failures = {f.path: f.reason for f in run.summary.failures}
    skipped = {f.path: f.reason for f in run.summary.skipped_files}
    files = {r["path"]: r for r in run.rows[FILES]}
    if case.outcome == "failed":
        assert path in failures, f"{name} not reported as failed"
        assert re.search(case.reason, failures[path]), failures[path]
        assert path not in files
    elif case.outcome == "skipped":
        assert path in skipped, f"{name} not reported as skipped"
        assert re.search(case.reason, skipped[path]), skipped[path]
        assert path not in files
    elif case.outcome == "ignored":
        assert path not in failures and path not in skipped and path not in files
        assert not any(p.startswith(path + os.sep) for p in files)
    else:
        assert path not in failures and path not in skipped
        row = files[path]
        items = [i for i in run.rows[ITEMS] if i["content_hash"] == row["content_hash"]]
        assert {i["kind"] for i in items} == {case.kind}
        if case.items is not None:
            assert len(items) == case.items
        if case.kind == "image":
            assert items[0]["width"] > 0 and items[0]["height"] > 0


def test_every_path_is_accounted_for(run: Run) -> None:
    reported = {f.path for f in run.summary.failures} | {f.path for f in run.summary.skipped_files}
    indexed = {r["path"] for r in run.rows[FILES]}
    expected = {str(run.root / n) for n, c in run.cases.items() if c.outcome != "ignored"}
    assert reported | indexed == expected
    assert run.summary.added == sum(c.outcome == "indexed" for c in run.cases.values())


def test_decoded_content_is_right(run: Run) -> None:
    files = {Path(r["path"]).name: r["content_hash"] for r in run.rows[FILES]}
    items = {}
    for item in run.rows[ITEMS]:
        items.setdefault(item["content_hash"], []).append(item)

    def text_of(name: str) -> str:
        return "\n".join(i["text"] for i in sorted(items[files[name]], key=lambda i: i["id"]))

    assert "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e" in text_of("latin1.txt")
    assert "\u00fcber stra\u00dfe" in text_of("utf16-le.txt")
    assert "big-endian \u65e5\u672c\u8a9e text" in text_of("utf16-be.txt")
    assert "\x00" not in text_of("late-nul.txt")
    rotated = items[files["rotated.jpg"]][0]
    assert (rotated["width"], rotated["height"]) == (20, 40)  # EXIF orientation applied
    big = items[files["big-legal.png"]][0]
    # The picture's own size is recorded, not the size it was decoded at.
    assert (big["width"], big["height"]) == (BIG_LEGAL_SIDE, BIG_LEGAL_SIDE)
    pages = sorted(items[files["thousands.pdf"]], key=lambda i: i["page"])
    assert [p["page"] for p in pages] == list(range(1, PDF_PAGES + 1))
    assert pages[-1]["text"] == f"tiny page {PDF_PAGES} of the manual"


def test_run_time_is_bounded(run: Run) -> None:
    assert run.seconds < MAX_SECONDS, run.summary.stage_seconds


def test_memory_is_bounded(run: Run) -> None:
    print(
        f"\ncorpus: {len(run.cases)} cases indexed in {run.seconds:.1f} s, peak RSS growth "
        f"{run.rss_growth >> 20} MiB; stages {run.summary.stage_seconds}"
    )
    assert run.rss_growth < MAX_RSS_GROWTH, f"peak RSS grew by {run.rss_growth >> 20} MiB"


def test_a_second_run_only_picks_up_the_file_that_changed(run: Run) -> None:
    with open_index(run.index_dir, **FAST) as index:
        summary = index.add([run.root])
    changed = str(run.root / "changes-during-decode.txt")
    assert [f.path for f in summary.failures if f.path == changed] == []
    assert summary.added == 1 and summary.updated == summary.removed == 0
    check_consistent(run.index_dir, {r["path"] for r in run.rows[FILES]} | {changed})


def test_animated_gif_uses_only_the_first_frame_quickly() -> None:
    from polylens.ingest.images import load_image

    data = animated_gif(20 * GIF_FRAMES)
    started = time.perf_counter()
    image = load_image(data, max_pixels=10**8, max_side=1600)
    assert time.perf_counter() - started < 2.0
    assert image.getpixel((0, 0)) == (255, 0, 0)


def test_a_pdf_over_max_pdf_pages_is_refused_with_the_limit(tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "long.pdf").write_bytes(pdf_document([f"p{i}" for i in range(300)]))
    with open_index(tmp_path / "index", max_pdf_pages=100, **FAST) as index:
        summary = index.add([folder])
    [failure] = summary.failures
    assert failure.reason == "PDF has 300 pages, over the limit of 100 (max_pdf_pages)"
    check_consistent(tmp_path / "index", set())


def test_a_broken_pdf_read_after_an_encrypted_one_is_not_called_encrypted(
    tmp_path: Path,
) -> None:
    from polylens.errors import CorruptFileError
    from polylens.ingest.pdf import PdfFile

    (tmp_path / "locked.pdf").write_bytes(pdf_document(["x"], user_password="pw"))
    (tmp_path / "empty-tree.pdf").write_bytes(pdf_document([]))
    for name, reason in [
        ("locked.pdf", "PDF is encrypted and needs a password"),
        ("empty-tree.pdf", "cannot open PDF"),  # PDFium's last error was stale here
        ("locked.pdf", "PDF is encrypted and needs a password"),
    ]:
        with pytest.raises(CorruptFileError) as caught:
            PdfFile(tmp_path / name, max_pages=10)
        assert str(caught.value).startswith(reason)


def test_a_broken_page_does_not_lose_the_good_pages(fast_index: Index, tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    texts = [f"good page number {i + 1} of the manual" for i in range(5)]
    (folder / "one-bad-page.pdf").write_bytes(pdf_document(texts, broken_pages=frozenset({2})))
    summary = fast_index.add([folder])
    assert summary.failures == [] and summary.added == 1
    rows = check_consistent(fast_index.path, {str(folder / "one-bad-page.pdf")})
    assert sorted(i["page"] for i in rows[ITEMS]) == [1, 2, 4, 5]


def test_a_permission_error_while_hashing_is_reported(
    fast_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What chmod 000 does for a normal user, simulated so it also runs as root."""
    from polylens.ingest import sources

    folder = tmp_path / "perm"
    folder.mkdir()
    (folder / "secret.txt").write_text("hidden\n")
    (folder / "open.txt").write_text("readable\n")

    def guarded_open(path: str, *args: object, **kwargs: object):  # noqa: ANN202
        if str(path).endswith("secret.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)  # noqa: PTH123

    monkeypatch.setattr(sources, "open", guarded_open, raising=False)
    summary = fast_index.add([folder])
    assert [(Path(f.path).name, f.reason) for f in summary.failures] == [
        ("secret.txt", "cannot read: Permission denied")
    ]
    check_consistent(fast_index.path, {str(folder / "open.txt")})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_an_unreadable_file_is_reported(fast_index: Index, tmp_path: Path) -> None:
    folder = tmp_path / "perm"
    folder.mkdir()
    (folder / "secret.jpg").write_bytes(jpeg_bytes())
    (folder / "secret.jpg").chmod(0)
    summary = fast_index.add([folder])
    assert [f.reason for f in summary.failures] == ["cannot read: Permission denied"]


def test_a_file_name_that_is_not_utf8_is_reported(fast_index: Index, tmp_path: Path) -> None:
    folder = tmp_path / "bytes"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/caf\xe9-latin1-name.txt", "wb") as handle:
        handle.write(b"a file whose name is not valid UTF-8\n")
    (folder / "fine.txt").write_text("a normal neighbour\n")
    summary = fast_index.add([folder])
    [failure] = summary.failures
    assert "UTF-8" in failure.reason and failure.path.encode("utf-8")
    assert summary.added == 1
    check_consistent(fast_index.path, {str(folder / "fine.txt")})
