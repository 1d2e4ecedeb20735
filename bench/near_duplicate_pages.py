"""Near-duplicate pages: within how many bits do two page hashes mean "the same page"?

Pages differ from photos: every page of a manual is dark text on white in the same
layout, so distinct pages' pHashes lie closer together than distinct photos' do, and the
photo radius (14, ``bench/near_duplicates.py``) would call many of them copies.

* pages: real PDFs nobody here wrote: ``samples/pdf/euro.pdf`` and the Debian manuals found
  under /usr/share/doc (``--pdf`` adds more), up to ``--pages`` pages each, rendered as
  indexing renders them (110 dpi, 1024 px long side);
* copies of every page: rendered again at 150 dpi, JPEG quality 40, Gaussian blur 1.2 px
  (a soft scan), brightness x0.85, turned by 1 degree on white, half size, 2 % cut off
  every side;
* distinct: every pair of different pages of one document, and across documents.

Reports, per radius 0-14: pairwise precision and recall, false pairs, and recall per copy
type; recommends the largest radius with no false pair (precision 1.00). Writes
bench/results/near_duplicate_pages.json.

    python bench/near_duplicate_pages.py
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from polylens.ingest.pdf import PdfFile  # noqa: E402
from polylens.ingest.units import CLIP_RENDER_SIDE  # noqa: E402
from polylens.representations.hamming import dct_hash, distances  # noqa: E402
from polylens.representations.phash import NEAR_DISTANCE  # noqa: E402

RENDER_DPI = 110


def _jpeg(picture: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    picture.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def copies(pdf: PdfFile, index: int, page: Image.Image) -> dict[str, Image.Image]:
    w, h = page.size
    return {
        "render-150dpi": pdf.render(index, dpi=150, max_side=2400),
        "jpeg-q40": _jpeg(page, 40),
        "blur-1.2px": page.filter(ImageFilter.GaussianBlur(1.2)),
        "darker-0.85": ImageEnhance.Brightness(page).enhance(0.85),
        "rotate-1deg": page.convert("RGB").rotate(1, fillcolor="white"),
        "half-size": page.resize((w // 2, h // 2), Image.Resampling.BICUBIC),
        "crop-2%": page.crop((w // 50, h // 50, w - w // 50, h - h // 50)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pdf", action="append", default=[], help="more PDFs")
    parser.add_argument("--pages", type=int, default=40, help="pages per document")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench/results/near_duplicate_pages.json"
    )
    args = parser.parse_args()
    docs = [
        str(ROOT / "samples/pdf/euro.pdf"),
        *sorted(glob.glob("/usr/share/doc/**/*.pdf", recursive=True)),
        *args.pdf,
    ]
    hashes, doc_of, copy_distance = [], [], {}
    used = []
    for doc in docs:
        with PdfFile(doc, max_pages=5000) as pdf:
            count = min(pdf.page_count, args.pages)
            for index in range(count):
                page = pdf.render(index, dpi=RENDER_DPI, max_side=CLIP_RENDER_SIDE)
                original = dct_hash(page)
                if original is None:  # a blank page has no hash
                    continue
                hashes.append(original)
                doc_of.append(len(used))
                for kind, copy in copies(pdf, index, page).items():
                    other = dct_hash(copy)
                    d = 64 if other is None else int(distances(np.array([original]), other)[0])
                    copy_distance.setdefault(kind, []).append(d)
        used.append({"path": doc, "pages": count})
    table = np.array(hashes, dtype=np.int64)
    doc_ids = np.array(doc_of)
    distinct_within, distinct_across = [], []
    for row in range(len(table) - 1):
        d = distances(table[row + 1 :], int(table[row]))
        same = doc_ids[row + 1 :] == doc_ids[row]
        distinct_within.extend(d[same].tolist())
        distinct_across.extend(d[~same].tolist())
    within, across = np.array(distinct_within), np.array(distinct_across)
    true = np.concatenate([np.array(v) for v in copy_distance.values()])
    rows = []
    print(
        f"{len(used)} documents, {len(table)} pages, {len(true)} copies, "
        f"{len(within)} distinct pairs within a document, {len(across)} across"
    )
    print("| radius | recall | false pairs within a doc | across docs | precision |")
    print("|---|---|---|---|---|")
    for radius in range(15):
        found = int((true <= radius).sum())
        false = int((within <= radius).sum()) + int((across <= radius).sum())
        precision = found / (found + false) if found + false else 1.0
        row = {
            "radius": radius,
            "recall": found / len(true),
            "false_within": int((within <= radius).sum()),
            "false_across": int((across <= radius).sum()),
            "precision": precision,
        }
        rows.append(row)
        print(
            f"| {radius} | {row['recall']:.3f} | {row['false_within']} | {row['false_across']} | {precision:.4f} |"
        )
    clean = [r["radius"] for r in rows if r["false_within"] + r["false_across"] == 0]
    chosen = max(clean) if clean else 0
    per_copy = {
        k: {
            "recall": float(np.mean(np.array(v) <= chosen)),
            "mean": float(np.mean(v)),
            "max": int(max(v)),
        }
        for k, v in copy_distance.items()
    }
    print(
        f"\nRECOMMENDED page radius: {chosen} (largest with no false pair); in code: {NEAR_DISTANCE['page']}"
    )
    print(
        f"closest distinct pages: within a document {int(within.min())}, across {int(across.min())}"
    )
    for kind, v in per_copy.items():
        print(f"  {kind:14} recall {v['recall']:.2f}  mean {v['mean']:.1f}  max {v['max']}")
    result = {
        "documents": used,
        "pages": len(table),
        "rows": rows,
        "recommended": chosen,
        "in_code": NEAR_DISTANCE["page"],
        "per_copy": per_copy,
        "closest_distinct": {"within": int(within.min()), "across": int(across.min())},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
