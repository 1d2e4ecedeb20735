"""OCR's cheap steps: what the presence pass costs and what it misses, by size of its copy.

Question: how small can the presence pass's copy be (``RapidOcr.presence_side``) before
it stops seeing text a person would search for, and what does each size cost a photo?
And how often does the document/screenshot test send a photo straight to full OCR?

* photos: the ingest bench's photo corpus (``bench/ingest.py`` makes it), decoded the way
  ingest decodes them (reduced JPEG decode, short side >= 512).
* text in photos: the same photos with a printed sign pasted on, its letters 1.5-6 % of
  the short side; "found" = the presence pass gives a box; "read" = the check step then
  reads a box cut from the full-resolution picture (what ingest does).
* documents: page 2 of rendered Debian TeX manuals (``/usr/share/doc/texlive-doc``, when
  installed), as PNG and as JPEG q85.

Single-threaded onnxruntime, like one ingest decode worker; holds the CPU lock.

    python bench/ocr_presence.py            # ~3 min
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ingest import WORK, cpu_lock, make_corpus  # noqa: E402

from polylens.encoders.ocr import RapidOcr, looks_like_document  # noqa: E402
from polylens.ingest.images import load_image  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ocr_presence.json"
SIDES = (480, 416, 384, 352, 320)
SHARES = (0.015, 0.025, 0.04, 0.06)
WORDS = ("Open Monday to Friday", "EXIT", "Birthday party 2019", "Main Street", "SALE", "Gate B12")


def _font(size: int):
    from PIL import ImageFont

    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    return (
        ImageFont.truetype(str(dejavu), size)
        if dejavu.exists()
        else ImageFont.load_default(size=size)
    )


def with_sign(picture, share: float, rng: random.Random):
    from PIL import ImageDraw

    picture = picture.copy()
    size = max(6, int(share * min(picture.size)))
    draw = ImageDraw.Draw(picture)
    words = rng.choice(WORDS)
    x = rng.randrange(0, max(1, picture.width // 3))
    y = rng.randrange(0, max(1, picture.height - 2 * size))
    if rng.random() < 0.5:  # dark on a light plate, or light with an outline on the photo
        draw.rectangle(draw.textbbox((x, y), words, font=_font(size)), fill=(250, 250, 245))
        draw.text((x, y), words, fill=(15, 15, 15), font=_font(size))
    else:
        draw.text(
            (x, y),
            words,
            fill=(255, 255, 255),
            font=_font(size),
            stroke_width=max(1, size // 12),
            stroke_fill=(0, 0, 0),
        )
    return picture


def reduced(picture):
    """``picture`` as ingest decodes it for the model and the presence pass."""
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return load_image(buffer.getvalue(), max_pixels=10**9, max_side=1600, min_side=512)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--signs", type=int, default=60, help="photos per text size")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    args = parser.parse_args()

    corpus = make_corpus(WORK / "ingest-corpus" / "photos-1000", 1000, text=False, seed=1)
    paths = sorted(corpus.glob("0*"))[: args.photos]
    ocr = RapidOcr()
    result: dict = {"settings": vars(args), "sides": {}, "signs": {}, "gate": {}}
    with cpu_lock(args.lock):
        photos = [load_image(p, max_pixels=10**9, max_side=1600, min_side=512) for p in paths]
        ocr.text_boxes(photos[0])  # load the sessions
        for side in SIDES:
            found = read = 0
            detect_s = check_s = 0.0
            for path, photo in zip(paths, photos):
                started = time.perf_counter()
                boxes = ocr.text_boxes(photo, side=side)
                detect_s += time.perf_counter() - started
                if len(boxes):
                    found += 1
                    started = time.perf_counter()
                    full = load_image(path, max_pixels=10**9, max_side=1600)
                    scale = np.array([full.width / photo.width, full.height / photo.height])
                    read += ocr.readable(full, (boxes * scale).astype(np.float32))
                    check_s += time.perf_counter() - started
            result["sides"][side] = {
                "photos": len(photos),
                "boxes_found": found,
                "read_as_text": read,
                "presence_ms_per_photo": 1000 * detect_s / len(photos),
                "check_ms_per_photo": 1000 * check_s / len(photos),
            }
        rng = random.Random(7)
        originals = [load_image(p, max_pixels=10**9, max_side=1600) for p in paths[: args.signs]]
        for share in SHARES:
            signed = [with_sign(o, share, rng) for o in originals]
            small = [reduced(s) for s in signed]
            row = {}
            for side in SIDES:
                found = sum(len(ocr.text_boxes(s, side=side)) > 0 for s in small)
                read = sum(
                    ocr.has_text(s, full=lambda f=f: f, side=side) for s, f in zip(small, signed)
                )
                row[side] = {"found": found, "read": read, "of": len(signed)}
            result["signs"][share] = row
    result["gate"]["photos"] = {
        "documents": sum(looks_like_document(p) for p in photos),
        "of": len(photos),
    }
    pdfs = sorted(Path("/usr/share/doc/texlive-doc").rglob("*.pdf"))
    if pdfs:
        import pypdfium2

        random.Random(0).shuffle(pdfs)
        pages = []
        for pdf_path in pdfs[:25]:
            try:
                pdf = pypdfium2.PdfDocument(str(pdf_path))
                pages.append(
                    pdf[min(1, len(pdf) - 1)].render(scale=150 / 72).to_pil().convert("RGB")
                )
            except Exception:  # noqa: BLE001 - a manual that does not render is not the question
                continue
        as_jpeg = [reduced(p) for p in pages]
        result["gate"]["pages (PNG)"] = {
            "documents": sum(map(looks_like_document, pages)),
            "of": len(pages),
        }
        result["gate"]["pages (JPEG)"] = {
            "documents": sum(map(looks_like_document, as_jpeg)),
            "of": len(pages),
        }
    else:
        result["gate"]["pages"] = (
            "not measured: no /usr/share/doc/texlive-doc (apt install texlive-latex-recommended-doc)"
        )

    print("\npresence pass on photos (no text added), per photo:")
    print("| side | boxes found | read as text | presence ms | check ms |")
    print("|---|---|---|---|---|")
    for side, r in result["sides"].items():
        print(
            f"| {side} | {r['boxes_found']}/{r['photos']} | {r['read_as_text']} | "
            f"{r['presence_ms_per_photo']:.1f} | {r['check_ms_per_photo']:.1f} |"
        )
    print("\nphotos with a sign (letters = share of short side): found by presence / read by check")
    print("| share | " + " | ".join(str(s) for s in SIDES) + " |")
    print("|---|" + "---|" * len(SIDES))
    for share, row in result["signs"].items():
        cells = [f"{row[s]['found']}/{row[s]['read']} of {row[s]['of']}" for s in SIDES]
        print(f"| {share:.3f} | " + " | ".join(cells) + " |")
    print("\ndocument/screenshot test (gets the larger presence copy):", json.dumps(result["gate"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
