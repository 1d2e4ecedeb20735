"""bench/gpu.py runs on CPU (its check flag) and writes the report the GPU run will write:
every pipeline row, embeddings for every image, sane cosines. No timing is asserted."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu.py"

pytestmark = pytest.mark.slow  # builds JPEGs and a model in a subprocess: ~25 s


def test_gpu_bench_runs_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--images", "8"]
    command += ["--batch", "4", "--seconds", "0", "--compare", "8", "--workers", "2"]
    command += ["--work", str(tmp_path), "--out", str(out), "--lock", ""]
    command += ["--long-side", "400,640"]  # small JPEGs: a quick test
    command += ["--gpu-decode-on-cpu"]  # torchvision's call stood in by PIL, the rest runs
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CPU check: not a GPU number" in done.stdout

    report = json.loads(out.read_text())
    assert report["check"].startswith("CPU check")
    assert report["target_img_per_s"] == 5000
    assert {p["gpu"] for p in report["published"]} == {"RTX 3080", "A100"}
    assert report["env"]["cpu_count"] and report["env"]["torch"]
    assert report["images"]["files"] == 8 and report["images"]["mean_kib"] > 10
    assert 0.08 < report["images"]["mean_megapixels"] < 0.41  # 400-640 px long side

    rows = {row["pipeline"]: row for row in report["rows"]}
    assert list(rows) == ["bare", "polylens", "pinned", "u8", "u8-draft224", "gpu-decode"]
    for name, row in rows.items():
        assert "error" not in row and "skipped" not in row, (name, row)
        assert row["batch"] == 4 and row["passes"] == 1
        assert row["images_timed"] == 8  # one whole pass: an embedding per image
        assert math.isfinite(row["img_per_s"]) and row["img_per_s"] > 0
        assert 0 <= row["busy_pct"] <= 100.5
        cos = row["cosine_vs_full_decode"]
        assert cos["n"] == (4 if name == "bare" else 8)
        assert math.isfinite(cos["mean"]) and math.isfinite(cos["min"])
    # the product path and its pinned/uint8 variants decode alike: the same vectors
    for name in ("polylens", "pinned", "u8", "bare"):
        assert rows[name]["cosine_vs_full_decode"]["min"] > 0.9999, name
    assert rows["u8-draft224"]["cosine_vs_full_decode"]["mean"] > 0.999
    # gpu-decode's torch resize/crop (here on CPU) against PIL's
    assert rows["gpu-decode"]["cosine_vs_full_decode"]["mean"] > 0.999
    assert rows["gpu-decode"]["pixels_mean_abs_diff_vs_full_decode"] < 1.0
    checks = report["checks"]
    assert checks["torch_resize_vs_pil_mean_abs_diff"] < 1.0
    assert 0 < checks["different_photos_cosine"]["one_minus_mean"]
    assert report["best_files_to_vectors"]["pipeline"] != "bare"


def test_gpu_bench_without_cuda_exits_2(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "x.json"), "--lock", ""]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--device cpu" in done.stderr and not (tmp_path / "x.json").exists()
