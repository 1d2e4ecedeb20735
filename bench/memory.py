"""Peak memory while indexing 1k vs 10k images: it should not grow with the corpus.

The pipeline keeps a bounded window of decoded items and commits every ``commit_every``
items, so peak RSS should be the same for 1k and 10k files. Small generated images and a
tiny random CLIP (the tests' builder) keep the run short; the model's size is a constant
that cancels out in the comparison. OCR and the text embedder are off: they add fixed
per-thread model memory, not per-item memory. Each size is indexed in its own process
while holding the CPU lock.

    python bench/memory.py            # prints a table, writes bench/results/memory.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench-work" / "memory"
RESULTS = ROOT / "bench" / "results" / "memory.json"


def make_images(folder: Path, n: int) -> Path:
    done = folder / f".done-{n}"
    if done.exists():
        return folder
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    for i in range(n):
        w, h = rng.randint(64, 200), rng.randint(64, 200)
        pixels = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=85)
    done.touch()
    return folder


def child(corpus: str, model: str, index: str) -> None:
    import resource

    sys.path.insert(0, str(ROOT / "src"))
    import polylens

    shutil.rmtree(index, ignore_errors=True)
    with polylens.open(index, image_model=model, text_model="none", ocr=False) as idx:
        summary = idx.add([corpus])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"items": summary.items_written, "seconds": round(summary.seconds, 1)}
    print(json.dumps(out | {"peak_rss_mb": round(peak, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import cpu_lock

    from tests._tiny_models import make_tiny_clip

    model = WORK / "tiny-clip"
    if not (model / "config.json").exists():
        make_tiny_clip(model, image_size=32)
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        corpus = make_images(WORK / f"images-{n}", n)
        command = [
            sys.executable,
            __file__,
            "--child",
            str(corpus),
            str(model),
            str(WORK / "index"),
        ]
        with cpu_lock(args.lock):
            done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append({"corpus": n} | json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'corpus':>8} {'items':>7} {'seconds':>8} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['corpus']:>8} {r['items']:>7} {r['seconds']:>8} {r['peak_rss_mb']:>12}")
    growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS {rows[-1]['corpus']} / {rows[0]['corpus']} items: {growth:.2f}x (target ~1.0)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": rows, "growth": round(growth, 3)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
