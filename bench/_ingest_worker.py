"""One timed measurement per process (so peak RSS is its own), run by bench/ingest.py.

Runs in the main venv (polylens, bare forward pass) and in the peers' venv (bare forward
pass, clip-retrieval, rclip, and building the peers' model files). Prints one JSON
object on its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _images(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.suffix in (".jpg", ".png"))


def run_polylens(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    import polylens

    index = Path(args.work)
    shutil.rmtree(index, ignore_errors=True)
    settings = dict(
        image_model=str(args.model),
        ocr=args.ocr == "on",
        batch_size=args.batch,
        workers=args.workers,
        device="cpu",
        encoder_runtime=args.encoder_runtime,
        precision=args.precision,
    )
    if args.text_model:
        settings["text_model"] = args.text_model
    with polylens.open(index, **settings) as idx:
        summary = idx.add([str(args.corpus)])
    stages = dict(summary.stage_seconds)
    busy = summary.seconds - stages.get("load_models", 0.0)
    # what the run chose for the image tower (encoders.onnx_images), and what the one-time
    # export and timing cost inside load_models (excluded, like loading the model)
    choice = index / "image-encoders" / "image" / "meta.json"
    return {
        "items": summary.items_written,
        "failed": summary.failed,
        "seconds": round(busy, 2),
        "rate": summary.items_written / busy,
        "stage_seconds": stages,
        "image_runtime": json.loads(choice.read_text()) if choice.is_file() else "torch",
    }


def run_bare(args: argparse.Namespace) -> dict:
    """The limit: HF CLIP's image forward pass alone, on tensors decoded beforehand."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(args.model).eval()
    processor = AutoImageProcessor.from_pretrained(args.model)
    paths = _images(args.corpus)[: args.n]
    batches = []
    for i in range(0, len(paths), args.batch):
        ims = [Image.open(p).convert("RGB") for p in paths[i : i + args.batch]]
        batches.append(processor(images=ims, return_tensors="pt")["pixel_values"])
    with torch.inference_mode():
        model.get_image_features(pixel_values=batches[0])  # warm-up
        started = time.perf_counter()
        for batch in batches:
            model.get_image_features(pixel_values=batch)
        seconds = time.perf_counter() - started
    return {
        "items": len(paths),
        "seconds": round(seconds, 2),
        "rate": len(paths) / seconds,
        "torch": torch.__version__,
    }


def make_peer_models(args: argparse.Namespace) -> dict:
    """OpenAI-format ViT-B/32 state dict (clip-retrieval) and its image tower in ONNX (rclip)."""
    import clip
    import torch
    from clip.model import CLIP

    out = Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12).eval()  # ViT-B/32 sizes
    torch.save(model.state_dict(), out / "openai-clip-b32.pt")
    rclip_dir = out / "rclip-data" / "ViT-B-32-256-datacomp_s34b_b86k"
    rclip_dir.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model.visual,
        (torch.randn(2, 3, 224, 224),),
        str(rclip_dir / "visual.onnx"),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "b"}, "output": {0: "b"}},
        dynamo=False,
        opset_version=17,
    )
    # Never loaded while indexing; present so rclip does not try to download it.
    (rclip_dir / "textual.onnx").write_bytes(b"")
    vocab = out / "rclip-data" / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz"
    vocab.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(clip.__file__).with_name("bpe_simple_vocab_16e6.txt.gz"), vocab)
    return {"ok": True}


def run_clip_retrieval(args: argparse.Namespace) -> dict:
    import clip
    import numpy as np
    from clip_retrieval.clip_inference import clip_inference

    started = time.perf_counter()
    clip.load(str(args.model), device="cpu", jit=False)  # what its own load costs
    load = time.perf_counter() - started
    out = Path(args.work)
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    clip_inference(
        input_dataset=str(args.corpus),
        output_folder=str(out),
        batch_size=args.batch,
        num_prepro_workers=args.workers,
        enable_text=False,
        clip_model=str(args.model),
        use_jit=False,
    )
    seconds = time.perf_counter() - started - load
    items = sum(len(np.load(p)) for p in (out / "img_emb").glob("*.npy"))
    return {
        "items": items,
        "seconds": round(seconds, 2),
        "rate": items / seconds,
        "note": f"model load ({load:.1f} s, measured separately) subtracted; "
        "DataLoader worker processes' memory is not in peak RSS",
    }


def run_rclip(args: argparse.Namespace) -> dict:
    os.environ["RCLIP_DATADIR"] = str(args.model)
    import rclip.utils.preprocess as prep
    from rclip import db, model
    from rclip.main import RClip

    prep.IMAGE_SIZE = 224  # rclip ships ViT-B/32 at 256 px; we give it ViT-B/32 at 224
    shutil.rmtree(Path(args.work), ignore_errors=True)
    Path(args.work).mkdir(parents=True)
    m = model.Model()
    m.ensure_downloaded()
    started = time.perf_counter()
    _ = m._session_visual_index  # noqa: SLF001 - load the ONNX session outside the timing
    load = time.perf_counter() - started
    database = db.DB(Path(args.work) / "db.sqlite3")
    r = RClip(m, database, indexing_batch_size=args.batch, exclude_dirs=None)
    started = time.perf_counter()
    r.ensure_index(str(args.corpus))
    seconds = time.perf_counter() - started
    r.close()
    items = len(r._get_features(str(args.corpus))[0])  # noqa: SLF001
    return {
        "items": items,
        "seconds": round(seconds, 2),
        "rate": items / seconds,
        "note": f"ONNX Runtime session load ({load:.1f} s) not timed; "
        f"rclip's preprocessing set to 224 px for the same model",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=640)
    parser.add_argument("--ocr", default="off")
    parser.add_argument("--text-model", default="")
    parser.add_argument("--encoder-runtime", default="auto")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    modes = {
        "polylens": run_polylens,
        "bare": run_bare,
        "peer-models": make_peer_models,
        "clip-retrieval": run_clip_retrieval,
        "rclip": run_rclip,
    }
    result = modes[args.mode](args)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main()
