"""Ingest throughput: polylens vs the bare forward pass ("the limit") vs clip-retrieval, rclip.

Question: how fast does ``polylens index`` turn a folder of photos into vectors, where does
the time go (read, decode, resize, OCR, encode, write), and how close is it to the model's
own forward pass? Targets (same run): OCR off >= 90 % of the bare forward-pass rate and
>= 1.5x every peer that runs; OCR on costs photos without text at most 25 % more.

Set-up, all automatic (work files in .bench-work/, reused between runs):
* corpus: N photos made from scikit-image's sample photos (random crop, flip, size
  320-1600 px, JPEG q80-95 or PNG), every file different so nothing is cached or deduped;
  plus M text pages from its scans (``page.png``, ``text.png``) for OCR throughput.
* model: ViT-B/32 CLIP (OpenAI sizes) with random weights, saved in Hugging Face format
  and loaded by local path through polylens's normal registry; peers get the same
  architecture (an OpenAI-format state dict for clip-retrieval, its image tower in ONNX
  for rclip). Speed does not depend on the weights.
* peers' venv (.bench-work/peers-venv): clip-retrieval and rclip need torchvision, which
  has no CPU wheel for this machine's torch; so a separate venv gets PyPI's default torch
  (CUDA build, runs on CPU; ~3 GB once) with the matching torchvision and the peers. The
  bare forward pass runs in both venvs, and each tool's rate is compared with the bare
  rate of its own venv (and, for the table, with polylens's).

Every measurement is its own process (peak RSS is its own) and holds the CPU lock
(``--lock``, default /tmp/polylens-cpu.lock) while it runs, so no one else shares the CPU.

    python bench/ingest.py                 # full run, ~10 min of measurements
    python bench/ingest.py --photos 300 --pages 10 --no-peers   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _cpu_lock import cpu_lock  # noqa: E402

WORK = ROOT / ".bench-work"
PEERS_VENV = WORK / "peers-venv"
# clip-retrieval's `clip` package imports pkg_resources, gone from setuptools 81 on.
PEER_PACKAGES = ["torch==2.13.0", "torchvision", "clip-retrieval", "rclip", "onnx", "setuptools<81"]
RESULTS = ROOT / "bench" / "results" / "ingest.json"
WORKER = ROOT / "bench" / "_ingest_worker.py"
TEXT_SAMPLES = ("page.png", "text.png")
SKIP_SAMPLES = ("chessboard", "microaneurysms", "lbpcascade", "multipage", "no_time")


def make_corpus(folder: Path, n: int, *, text: bool, seed: int) -> Path:
    """n distinct image files cut from scikit-image's sample photos (or its scans)."""
    done = folder / f".done-{n}"
    if done.exists():
        return folder
    import skimage
    from PIL import Image, ImageOps

    data = Path(skimage.__file__).parent / "data"
    names = sorted(
        p.name
        for p in data.iterdir()
        if p.suffix in (".png", ".jpg")
        and (p.name in TEXT_SAMPLES) == text
        and not p.name.startswith(SKIP_SAMPLES)
    )
    sources = [Image.open(data / name).convert("RGB") for name in names]
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = sources[i % len(sources)]
        w, h = image.size
        keep = rng.uniform(0.75, 1.0) if text else rng.uniform(0.5, 1.0)
        cw, ch = int(w * keep), int(h * keep)
        x, y = rng.randrange(w - cw + 1), rng.randrange(h - ch + 1)
        crop = image.crop((x, y, x + cw, y + ch))
        if not text and rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        side = rng.randint(900, 1600) if text else rng.randint(320, 1600)
        scale = side / max(crop.size)
        crop = crop.resize((max(1, int(cw * scale)), max(1, int(ch * scale))), Image.BICUBIC)
        if rng.random() < 0.8:
            crop.save(folder / f"{i:05d}.jpg", quality=rng.randint(80, 95))
        else:
            crop.save(folder / f"{i:05d}.png")
    done.touch()
    return folder


def ensure_peers_venv() -> Path | str:
    """The peers' venv's python, or why it cannot be had."""
    python = PEERS_VENV / "bin" / "python"
    probe = "import torchvision.ops, clip_retrieval, rclip, onnx, clip, transformers"
    if (
        python.exists()
        and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    ):
        return python
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    # The machine's pip config points at a local CPU torch wheel; torchvision from PyPI
    # needs PyPI's own (CUDA) build, so ignore the config for this venv.
    env["PIP_CONFIG_FILE"] = os.devnull
    steps = [
        [sys.executable, "-m", "venv", str(PEERS_VENV)],
        [python, "-m", "pip", "install", "-q", *PEER_PACKAGES],
    ]
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"cannot set up {PEERS_VENV}: {' '.join(map(str, step))}: {done.stderr[-400:]}"
    if subprocess.run([python, "-c", probe], capture_output=True).returncode != 0:
        return f"{PEERS_VENV}: torchvision/clip-retrieval/rclip do not import"
    return python


def measure(python: Path | str, mode: str, lock: str | None, **options) -> dict:
    command = [str(python), str(WORKER), mode]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    with cpu_lock(lock):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-600:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(wall, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=1500)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bare-n", type=int, default=640, help="images for the bare pass")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    parser.add_argument("--only", default="", help="semicolon-separated subset of the runs")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from _ingest_models import make_hf_clip_b32

    hf_model = make_hf_clip_b32(WORK / "models" / "hf-clip-b32")
    photos = make_corpus(
        WORK / "ingest-corpus" / f"photos-{args.photos}", args.photos, text=False, seed=1
    )
    pages = make_corpus(
        WORK / "ingest-corpus" / f"pages-{args.pages}", args.pages, text=True, seed=2
    )
    common = dict(batch=args.batch, workers=args.workers)
    me = sys.executable
    runs: dict[str, dict] = {}
    only = set(filter(None, args.only.split(";")))

    def run(name: str, python: Path | str, mode: str, **options) -> None:
        if only and name not in only:
            return
        print(f"... {name}", file=sys.stderr, flush=True)
        runs[name] = measure(python, mode, args.lock, **options)

    run("bare forward", me, "bare", corpus=photos, model=hf_model, n=args.bare_n, **common)
    index = WORK / "ingest-index"
    # the default (encoder_runtime auto), torch forced and the int8 opt-in; then OCR on
    variants = {
        "polylens, OCR off": (photos, {"ocr": "off"}),
        "polylens, OCR off, torch": (photos, {"ocr": "off", "encoder_runtime": "torch"}),
        "polylens, OCR off, int8": (
            photos,
            {"ocr": "off", "encoder_runtime": "onnx", "precision": "int8"},
        ),
        "polylens, OCR on": (photos, {"ocr": "on"}),
        "polylens pages, OCR on": (pages, {"ocr": "on"}),
    }
    for name, (corpus, options) in variants.items():
        run(name, me, "polylens", corpus=corpus, model=hf_model, work=index, **options, **common)

    peers_python: Path | str = "not run (--no-peers)"
    if not args.no_peers:
        with cpu_lock(args.lock):  # pip unpacks ~3 GB the first time
            peers_python = ensure_peers_venv()
    if isinstance(peers_python, Path):
        models = WORK / "models"
        if not (models / "rclip-data" / "ViT-B-32-256-datacomp_s34b_b86k" / "visual.onnx").exists():
            made = measure(peers_python, "peer-models", None, work=models)
            if "error" in made:
                peers_python = f"cannot build the peers' models: {made['error']}"
    if isinstance(peers_python, Path):
        run(
            "bare forward (peers' venv)",
            peers_python,
            "bare",
            corpus=photos,
            model=hf_model,
            n=args.bare_n,
            **common,
        )
        run(
            "clip-retrieval",
            peers_python,
            "clip-retrieval",
            corpus=photos,
            model=WORK / "models" / "openai-clip-b32.pt",
            work=WORK / "clip-retrieval-out",
            **common,
        )
        run(
            "rclip",
            peers_python,
            "rclip",
            corpus=photos,
            model=WORK / "models" / "rclip-data",
            work=WORK / "rclip-db",
            batch=args.batch,
        )
    else:
        for name in ("clip-retrieval", "rclip"):
            runs[name] = {"error": str(peers_python)}
    report(runs, args)


def report(runs: dict[str, dict], args: argparse.Namespace) -> None:
    bare = runs.get("bare forward", {}).get("rate")
    bare_peer = runs.get("bare forward (peers' venv)", {}).get("rate")
    off = runs.get("polylens, OCR off", {}).get("rate")
    print(f"\nphotos={args.photos} pages={args.pages} batch={args.batch} workers={args.workers}")
    print(f"{'run':28} {'items':>6} {'img/s':>7} {'/bare':>6} {'polylens/x':>10} {'RSS MB':>7}")
    for name, r in runs.items():
        if "error" in r:
            print(f"{name:28} NOT RUN: {r['error'][-300:]}")
            continue
        own_bare = bare_peer if "peers" in name or name in ("clip-retrieval", "rclip") else bare
        r["vs_bare_same_venv"] = round(r["rate"] / own_bare, 3) if own_bare else None
        r["polylens_ocr_off_over_this"] = round(off / r["rate"], 3) if off else None
        # polylens (main venv) vs a peer (peers' venv), each relative to its own venv's limit
        if own_bare and bare and off and own_bare is bare_peer:
            r["polylens_over_this_venv_normalised"] = round(
                (off / bare) / (r["rate"] / own_bare), 3
            )
        ratio = r.get("polylens_over_this_venv_normalised") or r["polylens_ocr_off_over_this"]
        print(
            f"{name:28} {r['items']:>6} {r['rate']:>7.2f} {r['vs_bare_same_venv'] or 0:>6.2f} "
            f"{ratio or 0:>10.2f} {r['peak_rss_mb']:>7.0f}"
        )
    for name, r in runs.items():
        if "stage_seconds" in r:
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_seconds"].items())
            print(f"  {name} stage seconds (summed over threads): {stages}")
        if "note" in r:
            print(f"  {name}: {r['note']}")
        chosen = r.get("image_runtime")
        if isinstance(chosen, dict):
            print(
                f"  {name}: image tower on {chosen['runtime']} ({chosen['precision']}, "
                f"{chosen['decided']}; timed torch {chosen['torch_ms']} / onnx "
                f"{chosen['onnx_ms']} ms per image; cosine to eager {chosen['min_cosine']})"
            )
    on = runs.get("polylens, OCR on", {}).get("rate")
    if on and off:
        print(
            f"OCR on costs photos {100 * (off / on - 1):.0f}% more time than OCR off (target <= 25%)"
        )
    if off and bare:
        print(
            f"polylens OCR off = {100 * off / bare:.0f}% of the bare forward rate (target >= 90%)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"settings": vars(args), "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
