"""The image tower in ONNX Runtime (``encoder_runtime``, ``precision``): the vectors an
index gets are those of eager torch to cosine 0.9999, the choice is recorded and reused,
int8 is opt-in and checked, and nothing here can make a run fail (tiny CLIP and SigLIP of
the real architectures, loaded through the same code path as a user's model)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polylens.encoders import onnx_files, onnx_images
from polylens.encoders.onnx_images import read_choice
from polylens.engine import open_index
from polylens.errors import ConfigError
from polylens.representations.image_text import ImageText

pytestmark = [pytest.mark.image_runtime, pytest.mark.slow]


@pytest.fixture
def photos(tmp_path: Path, samples_dir: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(samples_dir / "photos", root / "photos")
    return root


def _vectors(index: Path) -> dict[str, np.ndarray]:
    with open_index(index, create=False) as idx:
        table = idx._store.scan(ImageText.collection, ["item_id", "vector"])  # noqa: SLF001
    ids = table.column("item_id").to_pylist()
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    return dict(zip(ids, vectors, strict=True))


def _build(index: Path, corpus: Path, model: Path, **settings: object) -> None:
    with open_index(index, image_model=str(model), text_model="none", ocr=False, **settings) as idx:
        summary = idx.add([corpus])
    assert summary.failed == 0 and summary.items_written > 0


def _min_cosine(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys() and a
    x = np.stack([a[k] for k in sorted(a)])
    y = np.stack([b[k] for k in sorted(a)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return float(np.min(np.sum(x * y, axis=1)))


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_onnx_vectors_match_torch(
    family: str, photos: Path, tmp_path: Path, tiny_clip_dir: Path, tiny_siglip_dir: Path
) -> None:
    model = tiny_clip_dir if family == "clip" else tiny_siglip_dir
    _build(tmp_path / "torch", photos, model, encoder_runtime="torch")
    _build(tmp_path / "onnx", photos, model, encoder_runtime="onnx")
    assert not (tmp_path / "torch" / "image-encoders").exists()
    choice = read_choice(tmp_path / "onnx" / "image-encoders" / "image")
    assert choice is not None and choice.runtime == "onnx" and choice.decided == "onnx"
    assert choice.precision == "fp32" and choice.min_cosine >= 0.9999
    assert (tmp_path / "onnx" / "image-encoders" / "image" / "model.onnx").is_file()
    assert _min_cosine(_vectors(tmp_path / "torch"), _vectors(tmp_path / "onnx")) >= 0.9999
    with open_index(tmp_path / "onnx", create=False) as idx:
        shown = idx.status().image_encoders["image"]
    assert shown["runtime"] == "onnx" and shown["precision"] == "fp32" and shown["bytes"] > 0
    status = subprocess.run(
        [sys.executable, "-m", "polylens", "status", "--index", str(tmp_path / "onnx")],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "image encoder runs on ONNX Runtime (fp32)" in status.stdout


def test_auto_times_both_and_reuses_its_choice(
    photos: Path, tmp_path: Path, tiny_clip_dir: Path, samples_dir: Path
) -> None:
    index = tmp_path / "index"
    _build(index, photos, tiny_clip_dir)  # the default: auto
    folder = index / "image-encoders" / "image"
    choice = read_choice(folder)
    assert choice is not None and choice.decided == "auto"
    assert choice.torch_ms is not None and choice.onnx_ms is not None
    assert choice.torch_ms > 0 and choice.onnx_ms > 0
    expected = "onnx" if choice.onnx_ms <= onnx_images.FASTER_BY * choice.torch_ms else "torch"
    assert choice.runtime == expected
    # a model file only when it is used
    assert (folder / "model.onnx").is_file() == (choice.runtime == "onnx")
    written = (folder / "meta.json").stat().st_mtime_ns
    shutil.copytree(samples_dir / "scans", photos / "scans")  # new work for a second run
    _build(index, photos, tiny_clip_dir)
    assert (folder / "meta.json").stat().st_mtime_ns == written  # decided once
    # another machine (here: another key) decides again
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "machine": "elsewhere"}))
    Image.new("RGB", (64, 48), (200, 30, 90)).save(photos / "new.png")
    with open_index(index, create=False) as idx:
        idx.add([photos])
    again = read_choice(folder)
    assert again is not None and again.machine == onnx_images.machine_key()


def test_int8_is_opt_in_and_checked(photos: Path, tmp_path: Path, tiny_clip_dir: Path) -> None:
    _build(tmp_path / "fp32", photos, tiny_clip_dir, encoder_runtime="torch")
    _build(tmp_path / "int8", photos, tiny_clip_dir, encoder_runtime="onnx", precision="int8")
    choice = read_choice(tmp_path / "int8" / "image-encoders" / "image")
    assert choice is not None and choice.precision == "int8" and choice.runtime == "onnx"
    assert onnx_images.INT8_FLOOR <= choice.min_cosine < 1.0
    # int8 weights: the graph is several times smaller than fp32's
    cosine = _min_cosine(_vectors(tmp_path / "fp32"), _vectors(tmp_path / "int8"))
    assert onnx_images.INT8_FLOOR <= cosine < 0.99999


def test_a_failed_export_leaves_torch_and_the_run_whole(
    photos: Path, tmp_path: Path, tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_files, "export_graph", broken)
    index = tmp_path / "index"
    _build(index, photos, tiny_clip_dir, encoder_runtime="onnx")
    assert read_choice(index / "image-encoders" / "image") is None
    assert not list((index / "image-encoders").glob(".*"))  # no staging folder left


def test_an_export_that_disagrees_is_not_used(
    photos: Path, tmp_path: Path, tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_images, "MIN_COSINE", 1.5)  # nothing can agree this well
    index = tmp_path / "index"
    _build(index, photos, tiny_clip_dir, encoder_runtime="onnx")
    assert read_choice(index / "image-encoders" / "image") is None


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="encoder_runtime must be one of auto, torch, onnx"):
        open_index(tmp_path / "a", encoder_runtime="tensorrt")
    with pytest.raises(ConfigError, match="precision must be one of fp32, int8"):
        open_index(tmp_path / "b", precision="fp16")
    done = subprocess.run(
        [sys.executable, "-m", "polylens", "index", str(tmp_path), "--index", str(tmp_path / "c"),
         "--precision", "int4"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "precision must be one of fp32, int8" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_model_says_what_picture_side_it_reads(tiny_clip_dir: Path) -> None:
    """Photos are decoded at this side when OCR is off (``ingest.units.decode_side``)."""
    from polylens.encoders.registry import ModelRegistry
    from polylens.representations.image_text import ImageText

    model = ModelRegistry().load_image_text(str(tiny_clip_dir), device="cpu", batch_size=4)
    assert model.input_side == 32  # the tiny model's image_size
    assert ImageText().picture_side(model) == 32
