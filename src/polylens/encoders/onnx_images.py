"""The image tower through ONNX Runtime when that is faster on this machine.

Indexing is bound by the image model's forward pass; on a CPU, ONNX Runtime runs the same
graph with fused kernels that eager PyTorch does not use. So a run that loads an image
model on the CPU exports its image tower (pixels to one embedding) next to the index,
keeps the export only if it agrees with the model (every probe embedding within cosine
0.9999 of eager), and, with ``encoder_runtime = "auto"``, times both on a batch and uses
the faster. The choice is recorded with the machine it was made on, so later runs reuse
it without timing again; another machine, another runtime version or another model
decides afresh.

``precision = "int8"`` is opt-in: dynamic int8 quantisation of the exported graph (weights
int8, activations quantised per batch). Its embeddings differ from fp32's by more than
rounding, so it is kept only above a sanity floor, and ``polylens eval --precision int8``
measures what it changes in the rankings of the user's own data.

Vectors from either runtime go into the same index: at cosine 0.9999 they rank alike.
The exporter is torch's own (``torch.onnx.export``); the runtime and the quantiser are
``onnxruntime``'s (already installed for OCR).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
MIN_COSINE = 0.9999
"""fp32 export against eager: the same function up to float rounding."""
INT8_FLOOR = 0.95
"""int8 against eager: below this the quantised graph is broken, not just coarser."""
FASTER_BY = 0.95
"""``auto`` takes ONNX Runtime only if a batch takes at most this share of eager's time."""
PROBES = 8


@dataclass(frozen=True)
class ImageTower:
    """What a model gives to be exported: a module from pixels ``(N, 3, H, W)`` float32
    to one embedding per image, and pixels to probe it with."""

    module: Any
    probe_pixels: np.ndarray


@dataclass(frozen=True)
class TowerChoice:
    """What a run decided for one model on one machine (``meta.json``)."""

    format: int
    model: str
    precision: str
    runtime: str  # "onnx" or "torch": what runs
    dim: int
    min_cosine: float
    torch_ms: float | None  # per image, at the timing batch; None when not timed
    onnx_ms: float | None
    machine: str
    decided: str  # "auto" (timed), "onnx" (asked for)


def probe_images(count: int = PROBES) -> list[Any]:
    """Seeded pictures with a photo's statistics (smooth gradients, edges, grain) in
    several shapes, to compare the export with eager on."""
    from PIL import Image

    rng = np.random.default_rng(20261201)
    images = []
    for i in range(count):
        width, height = (320, 240) if i % 3 == 0 else (240, 360) if i % 3 == 1 else (500, 500)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        planes = [
            (rng.uniform(-1, 1) * x + rng.uniform(-1, 1) * y + rng.uniform(0, 255)) % 256
            for _ in range(3)
        ]
        pixels = np.stack(planes, axis=-1)
        for _ in range(4):
            top, left = rng.integers(0, height - 20), rng.integers(0, width - 20)
            pixels[top : top + rng.integers(8, 80), left : left + rng.integers(8, 80)] = (
                rng.uniform(0, 255, 3)
            )
        pixels += rng.normal(0, 6, pixels.shape)
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))
    return images


def machine_key() -> str:
    """What a timing depends on: cores, the runtimes' versions."""
    import onnxruntime
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()}/{cores}cpu/torch{torch.__version__}/ort{onnxruntime.__version__}"


def _session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.inter_op_num_threads = 1
    # one forward pass at a time, over every core: what torch does by default
    options.intra_op_num_threads = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    )
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxImageRunner:
    """Pixels to embeddings with the exported graph; thread-safe (ONNX Runtime sessions
    may be run from several threads, but one forward pass at a time uses the cores best)."""

    def __init__(self, path: Path, choice: TowerChoice) -> None:
        self.path = path
        self.choice = choice
        self._session = _session(path)
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(pixels, dtype=np.float32)
        with self._lock:
            out = self._session.run(None, {self._input: feed})[0]
        return np.asarray(out, dtype=np.float32)


def read_choice(directory: Path) -> TowerChoice | None:
    try:
        raw = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        choice = TowerChoice(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return choice if choice.format == FORMAT else None


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.sum(a * b, axis=1)


def _median_ms(run: Callable[[], Any], images: int, repeats: int = 3) -> float:
    run()  # warm-up: allocations, ONNX Runtime's first-run planning
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / images


def _export(tower: ImageTower, target: Path) -> None:
    import torch

    example = torch.from_numpy(tower.probe_pixels[:2])
    # the tracer's notes (TracerWarning, opset remarks) are about the graph, not for users
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            tower.module.eval(),
            (example,),
            str(target),
            input_names=["pixel_values"],
            output_names=["embedding"],
            dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantise(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul weights per output channel: per-tensor scales lose too much on ViT blocks
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)


def prepare(
    model: Any,
    directory: Path,
    resolved: str,
    *,
    runtime: str,
    precision: str,
    announce: Callable[[str], None] | None = None,
) -> OnnxImageRunner | None:
    """The runner ``model`` should use for images, exporting (and timing) first if this
    machine has not decided yet; None: eager torch."""
    if runtime == "torch" or getattr(model, "device", "cpu") != "cpu":
        return None  # on a GPU, torch's fp16 kernels are the fast path
    tower_of = getattr(model, "image_tower", None)
    tower: ImageTower | None = tower_of() if tower_of is not None else None
    if tower is None:
        return None
    key = machine_key()
    choice = read_choice(directory)
    wanted = "auto" if runtime == "auto" else "onnx"
    if (
        choice is not None
        and choice.model == resolved
        and choice.precision == precision
        and choice.dim == model.dim
        and (choice.decided == wanted or (wanted == "onnx" and choice.runtime == "onnx"))
        and choice.machine == key
    ):
        if choice.runtime == "torch":
            return None
        if (directory / "model.onnx").is_file():
            return OnnxImageRunner(directory / "model.onnx", choice)
    if announce is not None:
        announce(f"exporting the image model to ONNX Runtime ({precision})")
    try:
        return _decide(model, tower, directory, resolved, wanted, precision, key)
    except Exception as exc:  # noqa: BLE001 - an export that fails only costs speed
        log.warning("image encoder stays on torch: its ONNX export failed (%s)", exc)
        return None


def _decide(
    model: Any,
    tower: ImageTower,
    directory: Path,
    resolved: str,
    wanted: str,
    precision: str,
    key: str,
) -> OnnxImageRunner | None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        graph = work / "model.onnx"
        _export(tower, graph)
        if precision == "int8":
            _quantise(graph, work / "int8.onnx")
            (work / "int8.onnx").replace(graph)
        probes = tower.probe_pixels
        reference = model.embed_pixels(probes)
        runner = OnnxImageRunner(graph, _choice(resolved, precision, "onnx", 0, 0.0, key, wanted))
        cosine = float(np.min(_cosines(reference, runner(probes))))
        floor = MIN_COSINE if precision == "fp32" else INT8_FLOOR
        if cosine < floor:
            log.warning(
                "image encoder stays on torch: its ONNX export (%s) agrees only to cosine "
                "%.5f (< %s)",
                precision,
                cosine,
                floor,
            )
            return None
        torch_ms = onnx_ms = None
        chosen = "onnx"
        if wanted == "auto":
            torch_ms = _median_ms(lambda: model.embed_pixels(probes), len(probes))
            onnx_ms = _median_ms(lambda: runner(probes), len(probes))
            chosen = "onnx" if onnx_ms <= FASTER_BY * torch_ms else "torch"
        choice = _choice(resolved, precision, chosen, reference.shape[1], cosine, key, wanted)
        choice = TowerChoice(**{**asdict(choice), "torch_ms": torch_ms, "onnx_ms": onnx_ms})
        if chosen == "torch":
            graph.unlink()  # hundreds of MB that this machine will not use
        (work / "meta.json").write_text(json.dumps(asdict(choice), indent=1), encoding="utf-8")
        shutil.rmtree(directory, ignore_errors=True)
        work.replace(directory)
        log.info(
            "image encoder: %s (%s; torch %s ms, onnx %s ms per image; cosine %.6f)",
            chosen,
            precision,
            _fmt(torch_ms),
            _fmt(onnx_ms),
            cosine,
        )
        if chosen == "torch":
            return None
        runner.path, runner.choice = directory / "model.onnx", choice  # the session is loaded
        return runner
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _choice(
    resolved: str, precision: str, runtime: str, dim: int, cosine: float, key: str, decided: str
) -> TowerChoice:
    return TowerChoice(
        FORMAT, resolved, precision, runtime, int(dim), round(cosine, 7), None, None, key, decided
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
