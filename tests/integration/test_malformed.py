"""Bad files are reported with a reason and skipped; the run goes on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _files import jpeg_bytes, png_header_only
from _invariants import check_consistent

from polylens.engine import Index


@pytest.fixture
def messy(tmp_path: Path, samples_dir: Path) -> Path:
    root = tmp_path / "messy"
    root.mkdir()
    (root / "good.jpg").write_bytes(jpeg_bytes())
    (root / "good.txt").write_text("gliders ride thermals over the ridge\n")
    (root / "truncated.jpg").write_bytes(jpeg_bytes()[:200])
    (root / "empty.jpg").write_bytes(b"")
    (root / "garbage.png").write_bytes(os.urandom(2048).replace(b"\x00", b"\x01") + b"\x00")
    (root / "bomb.png").write_bytes(png_header_only(50_000, 50_000))
    (root / "broken.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF"
    )
    (root / "text-named.jpg").write_text("actually plain text about kites\n")
    (root / "photo-named.txt").write_bytes(jpeg_bytes())
    (root / "archive.bin").write_bytes(b"PK\x03\x04" + bytes(100))
    (root / "naïve ünïcode\nname.txt").write_text("unicode names work\n")
    (root / "loop").symlink_to(root, target_is_directory=True)
    return root


def test_each_bad_file_is_reported_and_the_rest_indexed(fast_index: Index, messy: Path) -> None:
    summary = fast_index.add([messy])
    reasons = {Path(f.path).name: f.reason for f in summary.failures}
    assert set(reasons) == {"truncated.jpg", "garbage.png", "bomb.png", "broken.pdf"}
    assert "bomb" in reasons["bomb.png"]
    assert "PDF" in reasons["broken.pdf"]
    assert "extension" in reasons["garbage.png"]
    skipped = {Path(f.path).name: f.reason for f in summary.skipped_files}
    assert skipped == {"archive.bin": "content is not a supported type", "empty.jpg": "empty file"}
    indexed = {
        "good.jpg",
        "good.txt",
        "text-named.jpg",
        "photo-named.txt",
        "naïve ünïcode\nname.txt",
    }
    assert summary.added == len(indexed)
    check_consistent(fast_index.path, {str(messy / n) for n in indexed})
    # content decides the kind, not the extension
    kinds = {Path(h.path).name: h.kind for h in fast_index.search("kites unicode gliders", k=10)}
    assert kinds["text-named.jpg"] == "text"
    assert fast_index.search(image=messy / "photo-named.txt", k=1)[0].kind == "image"


def test_failed_files_are_retried_and_a_fixed_file_gets_in(fast_index: Index, messy: Path) -> None:
    fast_index.add([messy])
    (messy / "truncated.jpg").write_bytes(jpeg_bytes())
    summary = fast_index.add([messy])
    assert "truncated.jpg" not in {Path(f.path).name for f in summary.failures}
    assert summary.added == 1


def test_a_good_file_that_turns_bad_loses_its_old_entry(fast_index: Index, messy: Path) -> None:
    fast_index.add([messy])
    (messy / "good.jpg").write_bytes(jpeg_bytes()[:100])
    summary = fast_index.add([messy])
    assert "good.jpg" in {Path(f.path).name for f in summary.failures}
    assert all(
        Path(h.path).name != "good.jpg"
        for h in fast_index.search(image=messy / "photo-named.txt", k=10)
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file_is_reported(fast_index: Index, messy: Path) -> None:
    secret = messy / "secret.txt"
    secret.write_text("hidden")
    secret.chmod(0)
    summary = fast_index.add([messy])
    assert "secret.txt" in {Path(f.path).name for f in summary.failures}


def test_encrypted_pdf_is_reported(fast_index: Index, tmp_path: Path) -> None:
    pypdfium2 = pytest.importorskip("pypdfium2")
    del pypdfium2
    # A minimal PDF with an /Encrypt dictionary in the trailer.
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"3 0 obj<</Filter/Standard/V 1/R 2/O("
        + b"a" * 32
        + b")/U("
        + b"b" * 32
        + b")/P -4>>endobj\n"
        b"trailer<</Root 1 0 R/Encrypt 3 0 R/ID[<00><00>]>>\n%%EOF"
    )
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "locked.pdf").write_bytes(body)
    summary = fast_index.add([folder])
    assert summary.failed == 1 and summary.added == 0


def test_an_unexpected_decoder_error_fails_only_that_file(
    fast_index: Index, messy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polylens.ingest.units import UnitMaker

    original = UnitMaker.image

    def flaky(self: UnitMaker, path: str, content_hash: str) -> list:
        if path.endswith("good.jpg"):
            raise RuntimeError("decoder bug")
        return original(self, path, content_hash)

    monkeypatch.setattr(UnitMaker, "image", flaky)
    summary = fast_index.add([messy])
    reasons = {Path(f.path).name: f.reason for f in summary.failures}
    assert "RuntimeError: decoder bug" in reasons["good.jpg"]
    # photo-named.txt holds the same bytes, so it shares the failure rather than hiding it
    assert reasons["photo-named.txt"] == "same content as a file that failed in this run"
    assert summary.added == 3  # good.txt, text-named.jpg and the unicode-named file
