"""The index's size on disk while a run swaps folders in and out (the Arrow mirror, the
store's compaction): a folder gone mid-walk is skipped, never an error (a 500 in /status)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polylens.status import _tree_size


def test_a_folder_removed_while_walking_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lance").mkdir()
    (tmp_path / "lance" / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "mirror.tmp").mkdir()
    (tmp_path / "mirror.tmp" / "items.arrow").write_bytes(b"y" * 5)
    (tmp_path / "index.json").write_bytes(b"{}")
    real_scandir = os.scandir

    def vanishing(path: object) -> object:
        if str(path).endswith("mirror.tmp"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", vanishing)
    assert _tree_size(tmp_path) == 12
