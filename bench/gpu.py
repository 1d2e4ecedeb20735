"""Image-embedding rate on one GPU: ViT-B/32 CLIP over camera-sized JPEGs, from the bare
forward pass up to files -> embeddings, with polylens's own encoder and decoder.

Question: how many photos per second can polylens embed on one H100/H200-class GPU
(target: 5,000 img/s; clip-retrieval publishes 1,500 img/s on an RTX 3080 and 2,500 on an
A100), and which stage limits it: the model, CPU JPEG decoding, or the host->GPU copy?

* model: ViT-B/32 CLIP (OpenAI sizes) with random weights (same FLOPs), built once by
  ``_ingest_models.make_hf_clip_b32`` and loaded through ``TransformersImageText``
  (fp16 on CUDA, fp32 on CPU: ``pick_device``). ``--tiny``: a tiny CLIP, for tests.
* images: ``--images`` real photos re-encoded as 640-2000 px JPEGs (``_gpu_pipeline``).
* pipelines (same images, warm-up first, each row up to ``--seconds`` but at least one
  whole pass, whose embeddings are compared):
  bare         forward only, on pixels already on the device (the ceiling)
  polylens     the product as it is: ``load_image`` (JPEG draft to a 512-px short side)
               + ``prepare_image`` on ``--workers`` threads, then the encoder's own
               ``_embed_image_batch`` (float32 normalise on CPU, pageable copy, sync)
  pinned       same decode; float32 pixels -> pinned buffer -> non_blocking copy -> fp16
  u8           same decode; uint8 crops -> pinned -> copy -> normalise on the GPU (4x
               fewer bytes over PCIe and no float pass on the CPU)
  u8-draft224  u8, with the JPEG decoded at 1/2-1/8 scale down to a 224-px short side
  gpu-decode   file bytes -> torchvision.io.decode_jpeg(list, device='cuda') (nvjpeg) ->
               antialiased bicubic resize + crop + normalise on the GPU
  Next batches decode on the thread pool while the model runs (two batches ahead).
* checks: cosine of each pipeline's embeddings against full-resolution decoding (no draft)
  through the product's preprocessing, beside the cosine between *different* photos (a
  random-weight model maps all photos close together, so compare 1-cos to that), and
  mean pixel differences of the 224x224 crops.

    python bench/gpu.py --device cpu --images 64 --batch 16   # CPU check, ~1 min
    bash bench/gpu/images.sh                                   # the GPU run (see there)
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
try:
    import polylens  # noqa: F401
except ImportError:  # the GPU machine: not installed, run from the tree
    sys.path.insert(1, str(ROOT / "src"))

from _cpu_lock import cpu_lock  # noqa: E402
from _gpu_pipeline import (  # noqa: E402
    PilDecodeStandIn,
    Stager,
    cosine,
    environment,
    image_set,
    measure,
    ordered_batches,
    probe_torchvision,
    row_line,
    torch_prepare,
)

TARGET = 5000
PUBLISHED = [  # clip-retrieval's README, as cited in issue 18
    {"system": "clip-retrieval", "gpu": "RTX 3080", "img_per_s": 1500},
    {"system": "clip-retrieval", "gpu": "A100", "img_per_s": 2500},
]
PIPELINES = ("bare", "polylens", "pinned", "u8", "u8-draft224", "gpu-decode")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--images", type=int, help="distinct JPEGs (4096 on cuda, 64 on cpu)")
    p.add_argument("--batch", type=int, help="batch size (512 on cuda, 16 on cpu)")
    p.add_argument("--batches", help="comma list of batch sizes (cuda: 256,512,1024)")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="threads")
    p.add_argument("--seconds", type=float, help="time per row after one pass (6 / 2)")
    p.add_argument("--deadline", type=float, help="no row starts after this (420 s / 3600)")
    p.add_argument("--pipelines", default=",".join(PIPELINES))
    p.add_argument("--compare", type=int, default=256, help="images in the full-decode check")
    p.add_argument(
        "--draft-side",
        type=int,
        help="short side the polylens row decodes at (default: the product's, OCR off: "
        "the model's input side)",
    )
    p.add_argument("--work", type=Path, default=ROOT / ".bench-work")
    p.add_argument("--model", type=Path, help="saved model (default: built under --work)")
    p.add_argument("--photos", type=Path, help="folder of scikit-image's sample photos")
    p.add_argument("--out", type=Path)
    p.add_argument("--tiny", action="store_true", help="tiny random CLIP (tests only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--long-side", default="640,2000", help="JPEG long sides, min,max (px)")
    p.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    p.add_argument("--gpu-decode-on-cpu", action="store_true", help="test its code on CPU")
    args = p.parse_args()
    cuda = args.device == "cuda"
    args.images = args.images or (4096 if cuda else 64)
    args.batch = args.batch or (512 if cuda else 16)
    default = "256,512,1024" if cuda and args.batch == 512 else str(args.batch)
    args.batches = [int(b) for b in (args.batches or default).split(",")]
    args.seconds = (6.0 if cuda else 2.0) if args.seconds is None else args.seconds
    args.deadline = args.deadline or (420.0 if cuda else 3600.0)
    args.long_side = tuple(int(x) for x in args.long_side.split(","))
    args.pipelines = [p for p in args.pipelines.split(",") if p]
    args.out = args.out or ROOT / "bench" / "results" / f"gpu-{args.device}.json"
    return args


def load_tiny_models():
    """tests/_tiny_models.py by its path, registered as ``tests._tiny_models``: a ``tests``
    package in site-packages (some wheels ship one) would shadow the repository's."""
    name = "tests._tiny_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "_tiny_models.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def main() -> int:
    args = parse()
    faulthandler.dump_traceback_later(args.deadline + 90, exit=True)  # never hang
    import torch

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print(
            f"CUDA is not available (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}): run on a GPU machine, or pass --device cpu",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    with cpu_lock(args.lock or None):
        return run(args, torch, cuda, started)


def run(args, torch, cuda: bool, started: float) -> int:
    from _ingest_models import make_hf_clip_b32
    from PIL import Image

    from polylens.config import IndexConfig
    from polylens.encoders.clip import FastImagePrep, TransformersImageText, _features
    from polylens.ingest.images import load_image
    from polylens.ingest.units import decode_side
    from polylens.representations.phash import PHASH_PICTURE_SIDE

    t = time.perf_counter()
    images = image_set(
        args.work / "gpu-images",
        args.images,
        seed=args.seed,
        sides=args.long_side,
        workers=args.workers,
        photos=args.photos,
    )
    paths = images.pop("paths")
    images["prepare_s"] = round(time.perf_counter() - t, 1)
    print(f"images: {images}", flush=True)

    tv, tv_note = None, "not asked for"
    if "gpu-decode" in args.pipelines:
        if cuda or args.gpu_decode_on_cpu:
            tv, tv_note = probe_torchvision(args.device)
            if tv is None and not cuda:
                tv, tv_note = PilDecodeStandIn, f"PIL stand-in (code path only): {tv_note}"
        else:
            tv_note = "nvjpeg decoding needs CUDA (--device cpu)"
        print(f"gpu-decode: {tv_note}", flush=True)

    t = time.perf_counter()
    import transformers

    if not hasattr(transformers, "CLIPImageProcessorPil"):  # transformers 4: same class
        transformers.CLIPImageProcessorPil = transformers.CLIPImageProcessor
    tiny_models = load_tiny_models()  # make_hf_clip_b32 takes its tokenizer from there
    if args.tiny:
        model_dir = args.model or args.work / "models" / "tiny-clip-224"
        if not (model_dir / "model.safetensors").exists():
            tiny_models.make_tiny_clip(model_dir, image_size=224)
    else:
        model_dir = make_hf_clip_b32(args.model or args.work / "models" / "hf-clip-b32")
    encoder = TransformersImageText("clip-b32-random", model_dir, device=args.device)
    model, dtype, prep = encoder._model, encoder._dtype, encoder.fast_prep
    loaded = next(model.parameters()).dtype
    if loaded != dtype:  # an older transformers ignores from_pretrained(dtype=...)
        model.to(dtype)
        print(f"the model loaded as {loaded}, not {dtype}: converted", flush=True)
    processor = type(encoder._image_processor).__name__
    prep_note = f"polylens's FastImagePrep (from {processor})"
    if prep is None:  # e.g. transformers 4 picked CLIPImageProcessorFast (torchvision here)
        pil_class = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
        prep = FastImagePrep.create(pil_class.from_pretrained(model_dir))
        prep_note = (
            f"polylens fell back to transformers' {processor} (no fast path): the polylens "
            "row measures that; the other rows use FastImagePrep"
        )
    print(f"preprocessing: {prep_note}", flush=True)
    model_s = round(time.perf_counter() - t, 1)
    dev = args.device
    mul = torch.from_numpy(prep.mul).to(dev)[None]
    add = torch.from_numpy(prep.add).to(dev)[None]
    crop = prep.crop or prep.size
    config = IndexConfig()
    # what `polylens index` does with OCR off: the image model's and the hash's side
    draft = args.draft_side or decode_side(
        max(encoder.input_side or 0, PHASH_PICTURE_SIDE), ocr=False
    )

    def load(path, min_side):
        return load_image(
            path, max_pixels=config.max_image_pixels, max_side=config.max_image_side,
            min_side=min_side,
        )  # fmt: skip

    def decode(path, min_side):
        return prep.prepare_image(load(path, min_side))

    def decode_product(path):
        return encoder.prepare_image(load(path, draft))

    def forward(pixels):
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=pixels)
        return _features(out, torch, "image_embeds", "pooler_output").float()

    pool = ThreadPoolExecutor(max(1, args.workers), thread_name_prefix="decode")
    # full-resolution reference (no draft) for the first --compare images
    ref_paths = paths[: min(args.compare, len(paths))]
    full = list(pool.map(partial(decode, min_side=None), ref_paths))
    ref = np.concatenate(
        [encoder.embed_pixels(prep.to_pixels(full[i : i + 64])) for i in range(0, len(full), 64)]
    )
    crops = {"full": np.stack(full).astype(np.float32)}
    for name, side in (("draft", draft), ("draft224", 224)):
        drafted = list(pool.map(partial(decode, min_side=side), ref_paths))
        crops[name] = np.stack(drafted).astype(np.float32)
    ref_pixels = torch.from_numpy(prep.to_pixels(full)).to(dev, dtype)
    checks = {
        "different_photos_cosine": cosine(ref[:-1], ref[1:]),
        "pixels_mean_abs_diff_vs_full_decode": {
            f"draft{draft}": round(float(np.abs(crops["draft"] - crops["full"]).mean()), 3),
            "draft224": round(float(np.abs(crops["draft224"] - crops["full"]).mean()), 3),
        },
    }
    # the torch resize/crop used by gpu-decode, checked against PIL here on the CPU
    few = ref_paths[: min(16, len(ref_paths))]
    pil = []
    for path in few:
        with Image.open(path) as image:
            pil.append(np.array(image.convert("RGB")))
    ours = [torch_prepare(torch, torch.from_numpy(a).permute(2, 0, 1), prep) for a in pil]
    theirs = [prep.prepare_image(Image.fromarray(a)) for a in pil]
    diffs = [np.abs(o.permute(1, 2, 0).numpy() - t) for o, t in zip(ours, theirs, strict=True)]
    checks["torch_resize_vs_pil_mean_abs_diff"] = round(float(np.mean(diffs)), 3)
    checks["torch_resize_vs_pil_max_abs_diff"] = round(float(np.max(diffs)), 1)

    def staged(batch, min_side, stack):
        stager = Stager(
            torch, dev, (batch, *crop, 3) if stack else (batch, 3, *crop),
            torch.uint8 if stack else torch.float32,
        )  # fmt: skip

        def gen(items, busy):
            for prepared in ordered_batches(pool, partial(decode, min_side=min_side), items, batch):
                host = prepared if stack else prep.to_pixels(prepared)
                filled = stager.fill(host, stack)
                with busy:  # from here the GPU's part: upload, normalise, forward
                    x = stager.send(filled)
                    if stack:
                        x = (x.permute(0, 3, 1, 2).float() * mul + add).to(dtype)
                    out = forward(x.to(dtype))
                yield len(prepared), out

        return gen

    def product(batch):
        def gen(items, busy):
            for prepared in ordered_batches(pool, decode_product, items, batch):
                pixels = encoder._pixels(prepared)  # = _embed_image_batch, split for busy
                with busy:
                    out = encoder.embed_pixels(pixels)
                yield len(prepared), out

        return gen

    def bare(batch):
        x = ref_pixels.repeat(-(-batch // len(ref_pixels)), 1, 1, 1)[:batch]

        def gen(items, busy):
            for start in range(0, len(items), batch):
                n = min(batch, len(items) - start)
                with busy:
                    out = forward(x[:n])
                yield n, out

        return gen

    def gpu_decode(batch):
        read_mode = tv.io.ImageReadMode.RGB

        def read(path):
            return torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)

        def gen(items, busy):
            for datas in ordered_batches(pool, read, items, batch):
                with busy:
                    decoded = tv.io.decode_jpeg(datas, mode=read_mode, device=dev)
                    x = torch.stack([torch_prepare(torch, im, prep) for im in decoded])
                    if gen.keep is None:
                        gen.keep = x[: len(ref_paths)].permute(0, 2, 3, 1).cpu().numpy()
                    out = forward((x * mul + add).to(dtype))
                yield len(datas), out

        gen.keep = None
        return gen

    makers = {
        "bare": bare,
        "polylens": product,
        "pinned": lambda b: staged(b, draft, False),
        "u8": lambda b: staged(b, draft, True),
        "u8-draft224": lambda b: staged(b, 224, True),
        "gpu-decode": gpu_decode,
    }
    env = environment(torch, cuda) | {"torchvision": tv_note, "preprocessing": prep_note}
    report = {
        "check": "CPU check of the script, not a GPU number" if not cuda else "GPU run",
        "question": "ViT-B/32 image embeddings per second on one GPU, files to vectors",
        "target_img_per_s": TARGET,
        "published": PUBLISHED,
        "model": "ViT-B/32 CLIP, random weights" if not args.tiny else "tiny CLIP (test)",
        "dtype": str(dtype).replace("torch.", ""),
        "dtype_as_loaded": str(loaded).replace("torch.", ""),
        "env": env,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("out",)
        }
        | {"draft_side": draft, "model_load_s": model_s},
        "images": images,
        "checks": checks,
        "rows": [],
    }
    print(f"model {model_dir.name} on {dev} ({report['dtype']}), {model_s} s to load", flush=True)
    print(row_line(None))
    # every pipeline at --batch first, so a deadline only cuts the other batch sizes
    order = [args.batch] + [b for b in args.batches if b != args.batch]
    for batch in order if args.batch in args.batches else args.batches:
        for name in args.pipelines:
            row = {"pipeline": name, "batch": batch}
            report["rows"].append(row)
            if name == "gpu-decode" and tv is None:
                row["skipped"] = tv_note
            elif name not in makers:
                row["skipped"] = "unknown pipeline"
            elif time.perf_counter() - started > args.deadline:
                row["skipped"] = f"deadline ({args.deadline:.0f} s) passed"
            if "skipped" in row:
                print(f"{name:<12} {batch:>5}  skipped: {row['skipped']}", flush=True)
                continue
            try:
                gen = makers[name](batch)
                row |= measure(torch, cuda, gen, paths, batch, args.seconds)
            except Exception as exc:  # noqa: BLE001 - one failed row must not lose the rest
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                print(f"{name:<12} {batch:>5}  error: {row['error']}", flush=True)
                if cuda:
                    torch.cuda.empty_cache()
                continue
            emb = row.pop("embeddings")
            same = min(len(ref), batch) if name == "bare" else len(ref)  # bare: tiled ref
            row["cosine_vs_full_decode"] = cosine(emb[:same], ref[:same])
            keep = getattr(gen, "keep", None)
            if keep is not None:  # gpu-decode's crops against the CPU's full decode
                diff = np.abs(keep - crops["full"][: len(keep)]).mean()
                row["pixels_mean_abs_diff_vs_full_decode"] = round(float(diff), 3)
            print(row_line(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")  # partial results too
    done = [r for r in report["rows"] if "img_per_s" in r]
    best = max(
        (r for r in done if r["pipeline"] != "bare"), key=lambda r: r["img_per_s"], default=None
    )
    report["best_files_to_vectors"] = best and {
        k: best[k] for k in ("pipeline", "batch", "img_per_s")
    }
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    env["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]  # shared CPU?
    print(
        f"target {TARGET} img/s; "
        + "; ".join(f"{p['system']} {p['img_per_s']} img/s on {p['gpu']}" for p in PUBLISHED)
    )
    if best:
        print(
            f"best files->vectors: {best['pipeline']} @ {best['batch']}: {best['img_per_s']:.0f} img/s"
            + ("" if cuda else "  (CPU check: not a GPU number)")
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    pool.shutdown(cancel_futures=True)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
