"""Helpers for bench/gpu.py: the JPEG set, the ordered decode pipeline and the torch
preprocessing that mirrors polylens's ``FastImagePrep`` on the GPU.

The image set: real photos (scikit-image's bundled sample photos + samples/photos)
re-encoded as camera/web-sized JPEGs, each a seeded crop, flip, resize to a long side of
640-2000 px, per-channel gain and sensor-like grain (so the files are as hard to decode
as real photos, not smooth upscales), quality 85-92, chroma 4:2:0 / 4:2:2 / 4:4:4.
Made once per (seed, version) into a folder and reused; only missing files are made.

Also: the torchvision probe (in a child process), pinned staging buffers, the busy-time
meter and the row timer (``measure``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = "gpu-images-v1"
SKIMAGE_PHOTOS = (
    "astronaut.png chelsea.png coffee.png hubble_deep_field.jpg retina.jpg rocket.jpg "
    "motorcycle_left.png motorcycle_right.png ihc.png camera.png grass.png gravel.png "
    "brick.png moon.png"
).split()
PROBE = """import io, sys, torch, torchvision
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
buf = io.BytesIO(); Image.new("RGB", (64, 48), (200, 10, 10)).save(buf, "JPEG")
data = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
out = decode_jpeg([data, data], mode=ImageReadMode.RGB, device=sys.argv[1])
print(torchvision.__version__, tuple(out[0].shape), int(out[0][0].float().mean()))"""
LONG_SIDE = (640, 2000)
QUALITY = (85, 92)


def source_photos(photos: Path | None) -> list[Path]:
    """The source photos: ``photos`` (a copy of scikit-image's, for a machine without it)
    or scikit-image's data folder, plus the repository's samples/photos."""
    folder = photos
    if folder is None:
        try:
            import skimage
        except ImportError:
            folder = None
        else:
            folder = Path(skimage.__file__).parent / "data"
    found = [folder / name for name in SKIMAGE_PHOTOS if folder and (folder / name).exists()]
    found += sorted((ROOT / "samples" / "photos").glob("*.jpg"))
    if len(found) < 4:
        raise SystemExit(
            f"too few source photos ({len(found)}): install scikit-image or pass --photos"
        )
    return found


_CACHE: dict[str, Any] = {}


def _source(path: str) -> Any:
    from PIL import Image

    if path not in _CACHE:
        with Image.open(path) as image:
            _CACHE[path] = image.convert("RGB")
    return _CACHE[path]


def _grain() -> np.ndarray:
    if "grain" not in _CACHE:
        rng = np.random.default_rng(12345)
        _CACHE["grain"] = rng.normal(0.0, 1.0, (509, 511, 3)).astype(np.float32)
    return _CACHE["grain"]


def make_one(job: tuple[int, int, list[str], str, tuple[int, int]]) -> tuple[int, int, int]:
    """Write image ``index`` of the set; returns (index, bytes, pixels)."""
    from PIL import Image

    index, seed, sources, out, sides = job
    rng = np.random.default_rng([seed, index])
    image = _source(sources[(index + int(rng.integers(0, len(sources)))) % len(sources)])
    width, height = image.size
    area = rng.uniform(0.45, 1.0)
    aspect = float(np.clip(width / height * rng.uniform(0.8, 1.25), 0.56, 1.8))
    crop_w = min(width, round((area * width * height * aspect) ** 0.5))
    crop_h = min(height, round(crop_w / aspect))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    image = image.crop((left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.25:
        image = image.transpose(Image.Transpose.ROTATE_90)  # portrait shots
    long_side = int(rng.integers(sides[0], sides[1] + 1))
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    # gain and grain: a sensor's noise keeps the entropy (and decode cost) of a real photo
    pixels = np.asarray(image, dtype=np.float32)
    grain = _grain()
    reps = (-(-size[1] // grain.shape[0]), -(-size[0] // grain.shape[1]), 1)
    dy, dx = int(rng.integers(0, grain.shape[0])), int(rng.integers(0, grain.shape[1]))
    noise = np.roll(np.tile(grain, reps), (dy, dx), axis=(0, 1))[: size[1], : size[0]]
    gain = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    pixels = pixels * gain + noise * np.float32(rng.uniform(2.0, 6.0))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    quality = int(rng.integers(QUALITY[0], QUALITY[1] + 1))
    subsampling = int(rng.choice([2, 1, 0], p=[0.7, 0.2, 0.1]))
    target = Path(out) / f"{index:06d}.jpg"
    partial = target.with_suffix(".tmp")
    image.save(partial, "JPEG", quality=quality, subsampling=subsampling)
    os.replace(partial, target)
    return index, target.stat().st_size, size[0] * size[1]


def image_set(
    folder: Path,
    count: int,
    *,
    seed: int,
    workers: int,
    photos: Path | None,
    sides: tuple[int, int] = LONG_SIDE,
) -> dict:
    """``count`` JPEGs in ``folder`` (made in ``workers`` processes where missing) and a
    summary: files, bytes, megapixels."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    known: dict[str, list[int]] = {}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("key") == [GENERATOR, seed, list(sides)]:
            known = saved.get("files", {})
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    missing = [i for i, p in enumerate(paths) if not p.exists() or str(i) not in known]
    if missing:
        sources = [str(p) for p in source_photos(photos)]
        jobs = [(i, seed, sources, str(folder), sides) for i in missing]
        if workers > 1 and len(jobs) > 8:
            import multiprocessing

            # spawn, not fork: the parent may already hold CUDA or torch's thread pools
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(jobs))) as pool:
                made = pool.map(make_one, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
        else:
            made = [make_one(job) for job in jobs]
        known.update({str(i): [size, pixels] for i, size, pixels in made})
        key = [GENERATOR, seed, list(sides)]
        manifest.write_text(json.dumps({"key": key, "files": known}))
    sizes = [known[str(i)] for i in range(count)]
    return {
        "paths": paths,
        "files": count,
        "made_now": len(missing),
        "mean_kib": round(sum(s[0] for s in sizes) / count / 1024, 1),
        "mean_megapixels": round(sum(s[1] for s in sizes) / count / 1e6, 3),
        "generator": GENERATOR,
        "seed": seed,
        "long_side_px": list(sides),
    }


def ordered_batches(
    pool: Executor,
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    batch: int,
    *,
    ahead: int = 2,
) -> Iterator[list[Any]]:
    """``fn`` over ``items`` on ``pool``, yielded in order as lists of ``batch``, with up to
    ``ahead`` further batches already submitted (decoding while the model runs). Closing
    the generator cancels what has not started."""
    starts = iter(range(0, len(items), batch))
    queue: deque[list[Future]] = deque()

    def submit() -> None:
        start = next(starts, None)
        if start is not None:
            queue.append([pool.submit(fn, item) for item in items[start : start + batch]])

    try:
        for _ in range(ahead + 1):
            submit()
        while queue:
            futures = queue.popleft()
            submit()
            yield [future.result() for future in futures]
    finally:
        for futures in queue:
            for future in futures:
                future.cancel()


def torch_prepare(torch: Any, image: Any, prep: Any) -> Any:
    """``FastImagePrep.prepare_image`` in torch, on any device: a uint8 (3, H, W) image
    -> float32 (3, crop_h, crop_w) in 0..255, rounded like PIL's uint8 output.
    Antialiased bicubic (torch's antialias path follows PIL's filter support)."""
    _, height, width = image.shape
    if prep.shortest_edge is not None:
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(prep.shortest_edge * long / short)
        new_w, new_h = (
            (prep.shortest_edge, new_long) if width <= height else (new_long, prep.shortest_edge)
        )
    else:
        new_h, new_w = prep.size
    x = image[None].float()
    if (new_w, new_h) != (width, height):
        mode = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(prep.resample, "bicubic")
        antialias = mode != "nearest"
        x = torch.nn.functional.interpolate(
            x, size=(new_h, new_w), mode=mode, antialias=antialias, align_corners=None
        )
        x = x.clamp_(0, 255).round_()
    if prep.crop is not None:
        crop_h, crop_w = prep.crop
        top, left = (new_h - crop_h) // 2, (new_w - crop_w) // 2
        if top < 0 or left < 0:
            raise ValueError(f"{new_w}x{new_h} is smaller than the {crop_w}x{crop_h} crop")
        x = x[:, :, top : top + crop_h, left : left + crop_w]
    return x[0]


class PilDecodeStandIn:
    """Stands in for ``torchvision`` (``io.decode_jpeg``, ``io.ImageReadMode``) where it
    cannot load (this CPU machine has a CPU-only torch; PyPI's torchvision is a CUDA
    build), so ``--gpu-decode-on-cpu`` still runs every other line of the gpu-decode
    pipeline. Never used for a GPU number."""

    class io:  # noqa: N801 - mirrors torchvision.io
        class ImageReadMode:
            RGB = "RGB"

        @staticmethod
        def decode_jpeg(datas: list[Any], mode: str, device: str) -> list[Any]:
            import io as stdio

            import torch
            from PIL import Image

            out = []
            for data in datas:
                with Image.open(stdio.BytesIO(data.numpy().tobytes())) as image:
                    array = np.array(image.convert(mode))
                out.append(torch.from_numpy(array).permute(2, 0, 1).to(device))
            return out


class Busy:
    """Time the device spent in the timed part of each batch (CUDA events or wall)."""

    def __init__(self, torch, cuda: bool) -> None:
        self.torch, self.cuda, self.spans, self.cpu_s = torch, cuda, [], 0.0

    def __enter__(self) -> Busy:
        if self.cuda:
            self.spans.append((self.torch.cuda.Event(True), self.torch.cuda.Event(True)))
            self.spans[-1][0].record()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.spans[-1][1].record()
        self.cpu_s += time.perf_counter() - self.t0

    def seconds(self) -> float:
        if not self.cuda:
            return self.cpu_s
        self.torch.cuda.synchronize()
        return sum(a.elapsed_time(b) for a, b in self.spans) / 1000


class Stager:
    """Rotating pinned host buffers: fill one, copy it non_blocking, reuse it only after
    its copy is done (an event per buffer). On CPU a pass-through."""

    def __init__(self, torch, device: str, shape, dtype, count: int = 3) -> None:
        self.torch, self.device, self.cuda = torch, device, device == "cuda"
        self.buffers = [torch.empty(shape, dtype=dtype, pin_memory=self.cuda) for _ in range(count)]
        self.events = [None] * count
        self.turn = 0

    def fill(self, arrays, stack: bool) -> int:
        """Host side: wait for the next buffer's last copy, fill it; returns its number."""
        i, self.turn = self.turn, (self.turn + 1) % len(self.buffers)
        if self.events[i] is not None:
            self.events[i].synchronize()
        view = self.buffers[i][: len(arrays)]
        if stack:
            np.stack(arrays, out=view.numpy())
        else:
            view.copy_(self.torch.from_numpy(arrays))
        self.filled = len(arrays)
        return i

    def send(self, i: int):
        """Device side: the buffer on the device (a non_blocking copy on CUDA)."""
        view = self.buffers[i][: self.filled]
        if not self.cuda:
            return view.clone()  # the buffer is reused
        moved = view.to(self.device, non_blocking=True)
        self.events[i] = self.torch.cuda.Event()
        self.events[i].record()
        return moved


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def cosine(a: np.ndarray, b: np.ndarray) -> dict:
    c = np.sum(unit(a) * unit(b), axis=1)
    gap = float(np.mean(1 - c))
    return {"mean": round(float(c.mean()), 8), "min": round(float(c.min()), 8),
            "one_minus_mean": float(f"{gap:.3g}"), "n": len(c)}  # fmt: skip


def probe_torchvision(device: str) -> tuple[object | None, str]:
    """torchvision if its decode_jpeg works on ``device`` (tried in a child process
    first: a torchvision built for another torch can crash the interpreter)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, device], capture_output=True, text=True, timeout=180
        )
    except subprocess.TimeoutExpired:
        return None, "torchvision probe timed out (180 s)"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return None, f"torchvision decode_jpeg on {device} failed: {lines[-1][:300]}"
    import torchvision

    return torchvision, f"torchvision {done.stdout.strip()}"


def measure(torch, cuda: bool, gen, paths, batch: int, seconds: float) -> dict:
    """Warm up on two batches (one on CPU), then time whole passes (the first recorded) until
    ``seconds`` have passed, stopping later passes between batches."""
    for _ in gen(paths[: (2 if cuda else 1) * batch], Busy(torch, cuda)):
        pass
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    busy, first, done, batches, passes = Busy(torch, cuda), [], 0, 0, 0
    t0 = time.perf_counter()
    while passes == 0 or time.perf_counter() - t0 < seconds:
        stream = gen(paths, busy)
        for n, emb in stream:
            done, batches = done + n, batches + 1
            if passes == 0:
                first.append(emb)
            elif time.perf_counter() - t0 >= seconds:
                stream.close()
                break
        passes += 1
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    row = {
        "images_timed": done,
        "passes": passes,
        "seconds": round(wall, 3),
        "img_per_s": round(done / wall, 1),
        "ms_per_batch": round(1000 * wall / batches, 2),
        "busy_pct": round(100 * busy.seconds() / wall, 1),
    }
    if cuda:
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    row["embeddings"] = np.concatenate(
        [e.cpu().numpy() if isinstance(e, torch.Tensor) else e for e in first]
    )
    return row


def environment(torch: Any, cuda: bool) -> dict:
    import PIL
    import transformers
    from PIL import features

    props = torch.cuda.get_device_properties(0) if cuda else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": props.name if props else None,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1) if props else None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "transformers": transformers.__version__,
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.check_feature("libjpeg_turbo"),
    }


def row_line(row: dict | None) -> str:
    """The table's header (``None``) or a measured row."""
    if row is None:
        return f"{'pipeline':<12} {'batch':>5} {'img/s':>8} {'ms/batch':>9} {'busy%':>6} {'GPU MiB':>8}"
    gap = row["cosine_vs_full_decode"]["one_minus_mean"]
    return (
        f"{row['pipeline']:<12} {row['batch']:>5} {row['img_per_s']:>8.0f} "
        f"{row['ms_per_batch']:>9.1f} {row['busy_pct']:>6.1f} {row.get('peak_gpu_mib', 0):>8.0f}"
        f"   1-cos vs full decode {gap:.1e}"
    )
