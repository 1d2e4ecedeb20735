"""Page-encoding rate of a ColQwen2-sized page model: ``polylens index --page-model`` vs
the bare forward pass of the same model on the same pages.

Question: how many pages per second does polylens turn into late-interaction vectors with
a model of ColQwen2's size (``vidore/colqwen2-v1.0-hf``: Qwen2-VL-2B backbone), what does
a page cost in vectors and bytes, and how much does the pipeline (scan, decode, resize,
store writes, the derived MaxSim index) add to the model's own forward pass?

Set-up, all automatic (work files in ``--work``, default .bench-work/page-encode/, reused):
* model: ``ColQwen2ForRetrieval`` with ``vidore/colqwen2-v1.0-hf``'s sizes and random
  weights (same FLOPs as the real ones): Qwen2-VL text model 1536 wide, 28 layers, 12 heads
  (2 KV heads), MLP 8960, multimodal RoPE sections 16/24/24; vision tower 32 layers,
  1280 wide, 16 heads, 14-px patches merged 2x2 into 1536-wide tokens; 128-d retrieval
  head. The vocabulary is the test suite's tiny Qwen2 tokenizer's (~570 ids, not 151,936):
  it only shrinks the embedding table, which costs no FLOPs. Saved once in bf16 (as the
  hub checkpoint is); both runs load it in the dtype measured.
* pages: real PDF pages (``samples/pdf/euro.pdf``, then the Debian manuals found under
  /usr/share/doc) rendered with pypdfium2 at 110 dpi to PNG; when the PDFs have fewer
  pages than asked, further rounds render them again at 112, 114, ... dpi (distinct files,
  so nothing is deduplicated; above the pixel budget every round costs the same).
* polylens: ``polylens.open(idx, image_model="none", text_model="none", ocr=False,
  page_model=<dir>, page_min_text=0)`` + ``idx.add([folder])``, timed wall clock around
  ``add`` after the model is loaded (``idx.load_models``); ``page_min_text=0`` because with
  OCR off no picture has text, and a picture is a page only by its OCR text otherwise.
* bare: the processor and ``model(**inputs).embeddings`` on the same pages, decoded
  beforehand, in batches of the size polylens uses (``min(--batch, 8)``).

Each run is its own process (peak RSS is its own) and holds the CPU lock (``--lock``).
On CUDA one warm-up page goes through each path first (``--warmup``); on CPU a page takes
tens of seconds and one-off costs are lost in it, so none. ``--dtype auto`` is polylens's
own choice (float32 on CPU, float16 on CUDA); another dtype is also forced on polylens's
page encoder in its process, since polylens has no dtype setting.

    python bench/page_encode.py --pages 4 --repeat 2   # CPU: ~10 min on 2 quiet cores
    python bench/page_encode.py --device cuda --dtype bfloat16 --pages 64   # see bench/gpu/

On 2 cores a page takes ~25 s in float32 and ~38 s in bfloat16 (no AMX: slower, but 5
instead of 12 GB of RSS); the first run also builds the model (~3 min, 3.7 GB on disk).
A process that is not under the lock but shares the CPU slows both runs far more than
its share (``other%``): the fastest repeat counts, and ``CPU s/p`` barely moves.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _cpu_lock import cpu_lock  # noqa: E402

WORK = ROOT / ".bench-work" / "page-encode"
RESULTS = ROOT / "bench" / "results" / "page_encode.json"
MODEL_NAME = "colqwen2-2b-random-bf16"
RENDER_DPI = 110
POLYLENS_BATCH_CAP = 8  # LateInteraction.load_model: batch_size=max(1, min(batch_size, 8))
PATCH_PIXELS = 28 * 28

# vidore/colqwen2-v1.0-hf = Qwen2-VL-2B-Instruct's backbone + a 128-d projection.
TEXT = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": True,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1_000_000.0,
        "mrope_section": [16, 24, 24],  # sums to head_dim / 2 = 64
    },
}
VISION = {
    "depth": 32,
    "embed_dim": 1280,
    "num_heads": 16,
    "mlp_ratio": 4,
    "hidden_act": "quick_gelu",
    "hidden_size": 1536,  # the merger's output = the text model's width
    "in_channels": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}
EMBEDDING_DIM = 128


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_now() -> tuple[float, float, float]:
    """(busy CPU seconds of the whole machine, of which stolen by the hypervisor, of this
    process): their deltas over a timed section show whether anything else ran then."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        fields = [0] * 8
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    own = resource.getrusage(resource.RUSAGE_SELF)
    busy = (user + nice + system + irq + softirq + steal) / hz
    return busy, steal / hz, own.ru_utime + own.ru_stime


def _contention(before: tuple[float, float, float], seconds: float) -> dict:
    after = _cpu_now()
    busy, steal, own = (a - b for a, b in zip(after, before))
    capacity = seconds * (os.cpu_count() or 1)
    return {
        "own_cpu_seconds": round(own, 1),
        "other_cpu_share": round(max(0.0, busy - own) / capacity, 3),
        "steal_share": round(steal / capacity, 3),
    }


def _dtype(torch, name: str, device: str):  # noqa: ANN001, ANN202 - torch imported lazily
    if name == "auto":  # what polylens picks (polylens.encoders.device.pick_device)
        return torch.float16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def _resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA GPU")
    return requested


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _sync(torch, device: str) -> None:  # noqa: ANN001
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _images(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


# -- work files ------------------------------------------------------------------------
def build_model(args: argparse.Namespace) -> dict:
    """ColQwen2ForRetrieval at colqwen2-v1.0's sizes, random weights, saved in bf16."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    import transformers
    from _tiny_colvision import _QWEN_ENDOFTEXT, _QWEN_SPECIALS, colqwen2_tokenizer
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2VLConfig,
    )

    directory = Path(args.model)
    tokenizer = colqwen2_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in _QWEN_SPECIALS}
    text = dict(
        TEXT,
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids[_QWEN_ENDOFTEXT],
    )
    vlm = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(VISION),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    config = ColQwen2Config(vlm_config=vlm, embedding_dim=EMBEDDING_DIM)
    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() and args.device.startswith("cuda") else "cpu"
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(0)
        model = ColQwen2ForRetrieval._from_config(config, dtype=torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    pil = getattr(transformers, "Qwen2VLImageProcessorPil", None)
    image_processor = (pil or transformers.Qwen2VLImageProcessor)(
        min_pixels=4 * PATCH_PIXELS,
        max_pixels=768 * PATCH_PIXELS,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    processor = ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    info = {
        "params": params,
        "embedding_params": model.get_input_embeddings().weight.numel(),
        "saved_dtype": "bfloat16",
        "vocab_size": len(tokenizer),
        "text": TEXT,
        "vision": VISION,
        "embedding_dim": EMBEDDING_DIM,
        "build_seconds": round(time.perf_counter() - started, 1),
        "built_on": device,
        "transformers": transformers.__version__,
    }
    (tmp / "bench-info.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return info


def render_pages(folder: Path, n: int, *, first: int = 0) -> Path:
    """Pages ``first .. first + n`` of the source PDFs as PNG files (see the module doc)."""
    listing = folder.with_name(folder.name + ".json")  # beside it: polylens would index it
    if listing.exists() and folder.is_dir():
        return folder
    import pypdfium2

    sources = [
        str(ROOT / "samples" / "pdf" / "euro.pdf"),
        *sorted(glob.glob("/usr/share/doc/**/*.pdf", recursive=True)),
    ]
    pages: list[tuple[str, int]] = []
    for path in sources:
        try:
            pages += [(path, i) for i in range(len(pypdfium2.PdfDocument(path)))]
        except pypdfium2.PdfiumError:
            continue
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    names = []
    for k in range(first, first + n):
        path, index = pages[k % len(pages)]
        dpi = RENDER_DPI + 2 * (k // len(pages))
        page = pypdfium2.PdfDocument(path)[index]
        picture = page.render(scale=dpi / 72).to_pil().convert("RGB")
        name = f"{k:04d}-{Path(path).stem}-p{index + 1}-{dpi}dpi.png"
        picture.save(folder / name)
        names.append(name)
    listing.write_text(json.dumps(names, indent=1) + "\n")
    return folder


# -- the two measurements (each in its own process) -------------------------------------
def run_bare(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor, ColQwen2ForRetrieval

    device = args.device
    dtype = _dtype(torch, args.dtype, device)
    started = time.perf_counter()
    model = ColQwen2ForRetrieval.from_pretrained(args.model, dtype=dtype).eval().to(device)
    processor = AutoProcessor.from_pretrained(args.model)
    _sync(torch, device)
    load = time.perf_counter() - started
    size = {
        "shortest_edge": 4 * PATCH_PIXELS,
        "longest_edge": max(4 * PATCH_PIXELS, args.max_pixels),
    }
    image_token = model.config.vlm_config.image_token_id

    def load_images(folder: Path) -> list:
        out = []
        for path in _images(folder):
            with Image.open(path) as im:
                out.append(im.convert("RGB"))
        return out

    pages = load_images(Path(args.pages_dir))
    batch = args.batch
    processor_s = forward_s = 0.0
    vectors, image_tokens, nonfinite = [], [], 0

    def encode(images: list, *, record: bool) -> None:
        nonlocal processor_s, forward_s, nonfinite
        for start in range(0, len(images), batch):
            t0 = time.perf_counter()
            inputs = processor.process_images(images[start : start + batch], size=size)
            t1 = time.perf_counter()
            with torch.inference_mode():
                embeddings = model(**inputs.to(device)).embeddings
            _sync(torch, device)
            t2 = time.perf_counter()
            if not record:
                continue
            processor_s += t1 - t0
            forward_s += t2 - t1
            mask = inputs["attention_mask"].bool().cpu()
            ids = inputs["input_ids"].cpu()
            finite = torch.isfinite(embeddings.float()).all(dim=-1).cpu()
            for i in range(len(mask)):
                vectors.append(int(mask[i].sum()))
                image_tokens.append(int((ids[i][mask[i]] == image_token).sum()))
                nonfinite += int((~finite[i][mask[i]]).any())

    if args.warmup_dir:
        encode(load_images(Path(args.warmup_dir)), record=False)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cpu = _cpu_now()
    started = time.perf_counter()
    encode(pages, record=True)
    seconds = time.perf_counter() - started
    load_on_machine = _contention(cpu, seconds)
    result = {
        "pages": len(pages),
        "seconds": round(seconds, 3),
        "rate": len(pages) / seconds,
        "processor_seconds": round(processor_s, 3),
        "forward_seconds": round(forward_s, 3),
        "vectors_per_page": float(np.mean(vectors)),
        "dim": int(model.config.embedding_dim),
        "image_tokens_per_page": float(np.mean(image_tokens)),
        "pages_with_nonfinite_vectors": nonfinite,
        "load_seconds": round(load, 1),
        "batch": batch,
        "dtype": str(dtype).removeprefix("torch."),
        "attention": getattr(model.config, "_attn_implementation", None),
        **load_on_machine,
    }
    return result


def run_polylens(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    import numpy as np
    import torch

    import polylens
    from polylens.encoders import late

    dtype = _dtype(torch, args.dtype, args.device)
    if args.dtype != "auto":  # polylens has no dtype setting: force it on the page encoder
        own_pick = late.pick_device
        late.pick_device = lambda requested: (own_pick(requested)[0], dtype)
    loaded: list[str] = []  # the dtype the page encoder's weights really have
    own_init = late.LateInteractionEncoder.__init__

    def init(self, *a, **k) -> None:
        own_init(self, *a, **k)
        loaded.append(str(next(self._model.parameters()).dtype).removeprefix("torch."))

    late.LateInteractionEncoder.__init__ = init

    index = Path(args.index)
    shutil.rmtree(index, ignore_errors=True)
    settings = dict(
        image_model="none",
        text_model="none",
        ocr=False,
        page_model=str(args.model),
        page_min_text=0,
        page_max_pixels=args.max_pixels,
        batch_size=args.batch,
        device=args.device,
    )
    with polylens.open(index, **settings) as idx:
        started = time.perf_counter()
        ready = idx.load_models(for_search=False)
        _sync(torch, args.device)
        load = time.perf_counter() - started
        if "late" not in ready:
            raise SystemExit(f"page model did not load: {ready}")
        if args.warmup_dir:
            idx.add([args.warmup_dir])
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        warm_ids = set()
        if args.warmup_dir:
            warm_ids = set(idx._store.scan("late_pages", ["id"]).column("id").to_pylist())
        cpu = _cpu_now()
        started = time.perf_counter()
        summary = idx.add([args.pages_dir])
        seconds = time.perf_counter() - started
        load_on_machine = _contention(cpu, seconds)
        rows = idx._store.scan("late_pages", ["id", "n", "dim", "vectors"]).to_pylist()
    counted = [r for r in rows if r["id"] not in warm_ids]
    footprint = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    return {
        "pages": len(counted),
        "items_written": summary.items_written,
        "failed": summary.failed,
        "seconds": round(seconds, 3),
        "rate": len(counted) / seconds,
        "stage_seconds": dict(summary.stage_seconds),
        "vectors_per_page": float(np.mean([r["n"] for r in counted])),
        "dim": counted[0]["dim"],
        "stored_vector_bytes_per_page": float(np.mean([len(r["vectors"]) for r in counted])),
        "index_dir_bytes_per_page": footprint / len(rows),
        "load_seconds": round(load, 1),
        "dtype": loaded[0] if loaded else "?",
        "batch": min(args.batch, POLYLENS_BATCH_CAP),
        "warnings": list(summary.warnings),
        **load_on_machine,
    }


def worker(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = {"bare": run_bare, "polylens": run_polylens, "model": build_model}[args.worker](args)
    result["peak_rss_mb"] = round(_peak_rss_mb())
    if args.worker != "model" and args.device.startswith("cuda"):
        import torch

        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print(json.dumps(result))


def measure(kind: str, args: argparse.Namespace, lock: str | None, **options) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind]
    for key in ("device", "dtype", "max_pixels", "threads"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    print(f"... {kind}", file=sys.stderr, flush=True)
    with cpu_lock(lock):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-1500:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(wall, 1)
    return result


# -- the run ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=4, help="pages timed in each run")
    parser.add_argument("--max-pixels", type=int, default=602_112, help="page_max_pixels")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="auto: polylens's own (float32 on CPU, float16 on CUDA)",
    )
    parser.add_argument("--batch", type=int, default=8, help="polylens batch_size (capped at 8)")
    parser.add_argument("--warmup", type=int, default=None, help="pages (default: cuda 1, cpu 0)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the fastest counts")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    parser.add_argument("--only", default="", help="comma-separated subset: bare,polylens")
    # worker-process arguments
    parser.add_argument("--worker", choices=["bare", "polylens", "model"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--pages-dir", help=argparse.SUPPRESS)
    parser.add_argument("--warmup-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    args.device = _resolve_device(args.device)
    args.batch = max(1, min(args.batch, POLYLENS_BATCH_CAP))
    cuda = args.device.startswith("cuda")
    warmup = args.warmup if args.warmup is not None else (1 if cuda else 0)
    work = args.work.resolve()
    model = work / MODEL_NAME
    if not (model / "bench-info.json").exists():
        made = measure("model", args, args.lock, model=model)  # a 2B model: keep others off
        if "error" in made:
            sys.exit(f"cannot build the model: {made['error']}")
    info = json.loads((model / "bench-info.json").read_text())
    pages = render_pages(work / f"pages-{args.pages}", args.pages)
    # pages after the timed ones: a copy of a timed page would be deduplicated, not encoded
    warm = (
        render_pages(work / f"warmup-{args.pages}-{warmup}", warmup, first=args.pages)
        if warmup
        else ""
    )
    common = dict(model=model, pages_dir=pages, batch=args.batch, warmup_dir=warm)
    only = set(filter(None, args.only.split(",")))
    index = work / f"index-{args.device.replace(':', '')}"
    kinds = {
        "bare forward": ("bare", {}),
        "polylens index": ("polylens", {"index": index}),
    }
    names = [n for n, (kind, _) in kinds.items() if not only or kind in only]
    reps: dict[str, list[dict]] = {name: [] for name in names}
    for rep in range(args.repeat):  # ABBA order: drift on the machine hits both alike
        for name in names if rep % 2 == 0 else names[::-1]:
            kind, extra = kinds[name]
            reps[name].append(measure(kind, args, args.lock, **common, **extra))
    runs: dict[str, dict] = {}
    for name, done in reps.items():
        good = [r for r in done if "error" not in r]
        # another process on the machine only ever slows a run down: keep the fastest
        best = dict(max(good, key=lambda r: r["rate"]) if good else done[-1])
        keys = ("seconds", "rate", "own_cpu_seconds", "other_cpu_share", "steal_share")
        best["repeats"] = [{k: r.get(k) for k in keys} if "error" not in r else r for r in done]
        runs[name] = best
    report(runs, args, info, warmup)


def report(runs: dict[str, dict], args: argparse.Namespace, info: dict, warmup: int) -> None:
    import torch

    bare = runs.get("bare forward", {}).get("rate")
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else _cpu_name()
    threads = args.threads or torch.get_num_threads()
    print(
        f"\nColQwen2-sized random model ({info['params'] / 1e9:.2f} B params, saved "
        f"{info['saved_dtype']}), device={args.device} ({device}), "
        f"torch threads={threads}, pages={args.pages}, batch={args.batch}, "
        f"max_pixels={args.max_pixels}, warm-up pages={warmup}"
    )
    print(
        f"{'run':16} {'dtype':>8} {'pages':>5} {'pages/s':>8} {'s/page':>7} {'/bare':>6} "
        f"{'CPU s/p':>7} {'vec/page':>8} {'KB/page':>8} {'RSS MB':>7} {'other%':>6}"
        + (f" {'GPU MB':>7}" if args.device.startswith("cuda") else "")
    )
    for name, r in runs.items():
        if "error" in r:
            print(f"{name:16} NOT RUN: {r['error'][-1200:]}")
            continue
        r["seconds_per_page"] = r["seconds"] / r["pages"] if r["pages"] else None
        r["rate_over_bare"] = round(r["rate"] / bare, 3) if bare else None
        stored = r.get("stored_vector_bytes_per_page") or r["vectors_per_page"] * r["dim"] * 2
        r.setdefault("stored_vector_bytes_per_page", stored)
        print(
            f"{name:16} {r['dtype']:>8} {r['pages']:>5} {r['rate']:>8.4f} "
            f"{r['seconds_per_page'] or 0:>7.2f} {r['rate_over_bare'] or 0:>6.3f} "
            f"{r['own_cpu_seconds'] / r['pages']:>7.1f} "
            f"{r['vectors_per_page']:>8.1f} {stored / 1024:>8.1f} {r['peak_rss_mb']:>7.0f}"
            f" {100 * (r['other_cpu_share'] + r['steal_share']):>6.1f}"
            + (f" {r.get('peak_gpu_mb', 0):>7.0f}" if args.device.startswith("cuda") else "")
        )
    b, p = runs.get("bare forward", {}), runs.get("polylens index", {})
    if "forward_seconds" in b:
        print(
            f"  bare: processor {b['processor_seconds']:.2f} s + forward {b['forward_seconds']:.2f} s; "
            f"{b['image_tokens_per_page']:.0f} image tokens a page; model load {b['load_seconds']} s; "
            f"pages with non-finite vectors: {b['pages_with_nonfinite_vectors']}"
        )
    if "stage_seconds" in p:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in p["stage_seconds"].items())
        print(f"  polylens stage seconds: {stages}")
        print(
            f"  polylens: whole index folder {p['index_dir_bytes_per_page'] / 1024:.0f} KB a page "
            f"(store + derived MaxSim copy); model load {p['load_seconds']} s"
        )
        for warning in p.get("warnings", []):
            print(f"  polylens warning: {warning}")
    if "rate" in b and "rate" in p:
        print(
            f"  polylens = {100 * p['rate'] / b['rate']:.1f} % of the bare rate; "
            f"overhead {p['seconds_per_page'] - b['seconds_per_page']:+.2f} s a page"
        )
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device_name": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
    }
    for name, r in runs.items():
        if len(r.get("repeats", [])) > 1:
            each = ", ".join(
                f"{x['seconds']:.1f} s (other {100 * x['other_cpu_share']:.0f} %)"
                if "seconds" in x and x["seconds"] is not None
                else "failed"
                for x in r["repeats"]
            )
            print(f"  {name} repeats: {each}")
    internal = ("worker", "model", "pages_dir", "warmup_dir", "index")
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in internal
    }
    settings["warmup"] = warmup
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"settings": settings, "environment": env, "model": info, "runs": runs}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
