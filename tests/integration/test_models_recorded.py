from __future__ import annotations

from pathlib import Path

import pytest

from polylens.engine import open_index
from polylens.errors import IndexMismatchError, InputError


def test_other_model_is_refused_with_how_to_fix(tmp_path: Path, samples_dir: Path) -> None:
    with open_index(
        tmp_path / "idx", image_model="fake-clip", text_model="fake-text", ocr=False
    ) as idx:
        idx.add([samples_dir / "text"])
    with pytest.raises(IndexMismatchError, match=r"--index NEW_DIR"):
        open_index(tmp_path / "idx", image_model="fake-clip", text_model="minilm")
    # the same model under another spelling is fine
    open_index(tmp_path / "idx", image_model="fake:48").close()


def test_unavailable_image_model_degrades_to_text_search(tmp_path: Path, samples_dir: Path) -> None:
    """The default image model is a hub checkpoint; offline it is skipped with a warning."""
    with open_index(
        tmp_path / "idx", image_model="clip-b32", text_model="fake-text", ocr=False
    ) as idx:
        summary = idx.add([samples_dir])
        assert summary.failed == 0 and summary.added == 10  # LICENSES.md is ignored
        assert any("image model clip-b32 unavailable" in w for w in summary.warnings)
        status = idx.status()
        image = next(m for m in status.models if m.role == "image")
        assert not image.available and "hf download" in (image.reason or "")
        hits = idx.search("SQLite database engine", k=3)
        assert hits and hits[0].path.endswith("about-sqlite.md")
        assert "image" not in hits[0].sources
        with pytest.raises(InputError, match="cannot search by image: the index has no image"):
            idx.search(image=samples_dir / "photos" / "cat.jpg")
