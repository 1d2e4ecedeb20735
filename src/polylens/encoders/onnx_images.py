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
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polylens.encoders import onnx_files
from polylens.encoders.base import normalise

log = logging.getLogger(__name__)

FORMAT = 1
MIN_COSINE = 0.9999
"""fp32 export against eager: the same function up to float rounding."""
INT8_FLOOR = 0.95
"""int8 against eager: below this the quantised graph is broken, not just coarser."""
BATCH_AXIS = {"pixel_values": {0: "batch"}}
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

    return (
        f"{platform.machine()}/{onnx_files.cores()}cpu/torch{torch.__version__}"
        f"/ort{onnxruntime.__version__}"
    )


class OnnxImageRunner:
    """Pixels to embeddings with the exported graph, one forward pass at a time over
    every core (what torch does by default)."""

    def __init__(self, path: Path) -> None:
        self._session = onnx_files.session(path, threads=onnx_files.cores())
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


def _median_ms(run: Callable[[], Any], images: int, repeats: int = 3) -> float:
    run()  # warm-up: allocations, ONNX Runtime's first-run planning
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000 / images


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
            return OnnxImageRunner(directory / "model.onnx")
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
    import torch

    probes = tower.probe_pixels
    with onnx_files.staging(directory) as work:
        graph = work / "model.onnx"
        example = (torch.from_numpy(probes[:2]),)
        onnx_files.export_graph(tower.module, example, graph, ["pixel_values"], BATCH_AXIS)
        if precision == "int8":
            _quantise(graph, work / "int8.onnx")
            (work / "int8.onnx").replace(graph)
        reference = model.embed_pixels(probes)
        runner = OnnxImageRunner(graph)
        cosine = float(np.min(np.sum(normalise(reference) * normalise(runner(probes)), axis=1)))
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
        choice = TowerChoice(
            format=FORMAT,
            model=resolved,
            precision=precision,
            runtime=chosen,
            dim=int(reference.shape[1]),
            min_cosine=round(cosine, 7),
            torch_ms=torch_ms,
            onnx_ms=onnx_ms,
            machine=key,
            decided=wanted,
        )
        if chosen == "torch":
            graph.unlink()  # hundreds of MB that this machine will not use
        (work / "meta.json").write_text(json.dumps(asdict(choice), indent=1), encoding="utf-8")
        onnx_files.swap_in(work, directory)  # the runner's session is already loaded
    log.info(
        "image encoder: %s (%s; torch %s ms, onnx %s ms per image; cosine %.6f)",
        chosen,
        precision,
        "-" if torch_ms is None else f"{torch_ms:.1f}",
        "-" if onnx_ms is None else f"{onnx_ms:.1f}",
        cosine,
    )
    return runner if chosen == "onnx" else None
