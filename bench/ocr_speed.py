"""OCR of scanned pages: polylens's OCR against Debian's tesseract, pages/s and accuracy.

Question: how many scanned pages a second polylens reads on 2 cores, next to tesseract
in the same run, and whether it reads them as well (goal: >= 1.5x tesseract's pages/s at
equal or better character error rate).

Pages (a fixed, seeded sample; cached in ``.bench-work/ocr-speed/``):

* manuals: pages of the six Debian PDF manuals of ``quality_documents.py`` (pages whose
  text layer holds >= 300 characters, ``--manual-pages`` spread evenly over the manuals),
  scanned as that benchmark scans them (rendered at 150 dpi, stored as an image-only PDF
  of JPEG q75 pictures) and rendered back as ingest renders a page without a text layer
  (``PdfFile.render``, ``pdf_ocr_dpi`` 150). Ground truth: the original PDF's text layer
  (pypdfium2).
* cranfield: Cranfield abstracts rendered as page images (``_render_pages.py``, PNG, as
  the page-image mode of ``quality_cranfield.py`` renders them), decoded as ingest decodes
  an image (``load_image``). Ground truth: the title and abstract.

Systems, each given the same decoded pixels, each measurement under the CPU lock:

* ``polylens``: ``RapidOcr.read`` as ingest calls it (a page without a text layer:
  ``check_presence=False``; an image file: the presence and check steps first), on two
  threads with one single-threaded engine each (ingest's ``workers=2`` decode threads).
  Models are loaded before the clock starts.
* ``polylens-1x2``: one page at a time, one engine with two onnxruntime threads.
* ``rapidocr``: rapidocr-onnxruntime's own pipeline on every page (``RapidOCR()(...,
  use_cls=False)``, one single-threaded engine per thread, two threads), its lines kept
  and ordered as ``RapidOcr.read`` keeps them: how polylens read a page before its own
  page path (``ocr_pages.py``), without the presence steps.
* ``tesseract-1x2``: Debian's ``tesseract`` CLI, default ``--oem``, ``--psm 3``,
  ``--dpi 150``, ``OMP_THREAD_LIMIT=1``, two processes each reading half the pages (from
  a list file, so the model loads once per process; that load is inside the clock).
* ``tesseract``: the same with its default threading, one process for all pages.

Accuracy, after NFKC, lower case, typographic quotes and dashes made plain and runs of
whitespace made one space: CER = Levenshtein edits / ground-truth characters (summed over
the pages), and word recall = share of ground-truth words (runs of letters and digits,
counted with multiplicity) found among the output's words. Reading order counts in CER,
not in word recall.

    python bench/ocr_speed.py                # ~10 min on 2 cores -> results/ocr_speed.json
    python bench/ocr_speed.py --manual-pages 6 --cranfield-pages 4 --out /tmp/o.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import _documents as D  # noqa: E402
from _cpu_lock import cpu_lock  # noqa: E402
from _render_pages import render_page  # noqa: E402

from polylens.config import IndexConfig  # noqa: E402
from polylens.encoders.ocr import RapidOcr  # noqa: E402
from polylens.ingest.images import load_image  # noqa: E402
from polylens.ingest.pdf import PdfFile  # noqa: E402
from polylens.ingest.units import MODEL_DECODE_SIDE, OCR_RENDER_SIDE  # noqa: E402

WORK = ROOT / ".bench-work" / "ocr-speed"
RESULTS = ROOT / "bench" / "results" / "ocr_speed.json"
CRANFIELD = Path("/work/shared/data/cranfield")
MIN_PAGE_CHARS = 300
SYSTEMS = ("polylens", "polylens-1x2", "rapidocr", "tesseract-1x2", "tesseract")


@dataclass
class Page:
    corpus: str
    name: str
    image: object  # PIL image, RGB, as ingest hands it to OCR
    truth: str
    check_presence: bool
    """Ingest's call: False for a PDF page without a text layer, True for an image file."""


# -- pages ------------------------------------------------------------------------------
def manual_pages(count: int, seed: int, config: IndexConfig) -> list[Page]:
    import pypdfium2

    pdfs = D.gather_pdfs([m.name for m in D.CORPUS], WORK / "pdfs", None)
    rng = random.Random(seed)
    chosen: list[tuple[str, int, str]] = []
    per = [count // len(D.CORPUS) + (i < count % len(D.CORPUS)) for i in range(len(D.CORPUS))]
    for manual, n in zip(D.CORPUS, per):
        texts = D.page_texts(pdfs[manual.name])
        eligible = [i for i, t in enumerate(texts) if len(D.flat(t)) >= MIN_PAGE_CHARS]
        for i in sorted(rng.sample(eligible, min(n, len(eligible)))):
            chosen.append((manual.name, i, texts[i]))
    # The chosen pages scanned into one image-only PDF, as quality_documents.py scans.
    key = hashlib.sha256(repr([(n, i) for n, i, _ in chosen]).encode()).hexdigest()[:12]
    scanned = WORK / f"scanned-{D.SCAN_DPI}dpi-q{D.JPEG_QUALITY}-{key}.pdf"
    if not scanned.is_file():
        images = []
        for name, index, _ in chosen:
            doc = pypdfium2.PdfDocument(str(pdfs[name]))
            page = doc[index]
            images.append(page.render(scale=D.SCAN_DPI / 72).to_pil().convert("RGB"))
            page.close()
            doc.close()
        tmp = scanned.with_suffix(".tmp.pdf")
        images[0].save(
            tmp,
            "PDF",
            save_all=True,
            append_images=images[1:],
            resolution=float(D.SCAN_DPI),
            quality=D.JPEG_QUALITY,
        )
        tmp.replace(scanned)
    out = []
    with PdfFile(str(scanned), max_pages=config.max_pdf_pages) as pdf:
        for k, (name, index, text) in enumerate(chosen):
            image = pdf.render(k, dpi=config.pdf_ocr_dpi, max_side=OCR_RENDER_SIDE)
            out.append(Page("manuals", f"{name}#{index + 1}", image, D.clean(text), False))
    return out


def cranfield_pages(count: int, seed: int, config: IndexConfig) -> list[Page]:
    docs = {}
    with open(CRANFIELD / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                docs[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    ids = sorted(random.Random(seed).sample(sorted(docs, key=int), count), key=int)
    folder = WORK / "cranfield"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for doc_id in ids:
        title, text = docs[doc_id]
        path = folder / f"{doc_id}.png"
        if not path.is_file():
            render_page(title, text).save(path, format="PNG")
        # As UnitMaker.image decodes it (a PNG is decoded whole either way).
        image = load_image(
            path,
            max_pixels=config.max_image_pixels,
            max_side=config.max_image_side,
            min_side=MODEL_DECODE_SIDE,
        )
        out.append(Page("cranfield", doc_id, image, f"{title}\n{text}", True))
    return out


# -- systems ----------------------------------------------------------------------------
def run_polylens(
    pages: list[Page], *, workers: int, threads: int
) -> tuple[list[str], float, float]:
    ocr = RapidOcr(threads_per_engine=threads)
    barrier = threading.Barrier(workers)

    def warm(_: int) -> None:
        ocr._engine()  # each decode thread loads its own sessions, as in ingest
        barrier.wait()

    def read(page: Page) -> str:
        if page.check_presence:
            return ocr.read(page.image, full_image=lambda: page.image)
        return ocr.read(page.image, check_presence=False)

    return _timed(pages, warm, read, workers)


def _timed(
    pages: list[Page], warm: Callable[[int], None], read: Callable[[Page], str], workers: int
) -> tuple[list[str], float, float]:
    """Texts, wall seconds and CPU seconds of reading ``pages`` on ``workers`` threads,
    each thread warmed (its sessions loaded) before the clock."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(warm, range(workers)))
        cpu = _cpu_seconds()
        started = time.perf_counter()
        texts = list(pool.map(read, pages))
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
    return texts, seconds, cpu


def run_rapidocr(pages: list[Page]) -> tuple[list[str], float, float]:
    from rapidocr_onnxruntime import RapidOCR

    from polylens.encoders.ocr import _is_text, _reading_order
    from polylens.encoders.respace import respace_line

    local = threading.local()
    barrier = threading.Barrier(2)

    def warm(_: int) -> None:
        local.engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        barrier.wait()

    def read(page: Page) -> str:
        bgr = np.ascontiguousarray(np.asarray(page.image.convert("RGB"))[:, :, ::-1])
        result, _ = local.engine(bgr, use_det=True, use_cls=False, use_rec=True)
        lines = [
            (min(p[1] for p in box), min(p[0] for p in box), respace_line(text.strip()))
            for box, text, score in result or []
            if _is_text(text, float(score))
        ]
        return _reading_order(lines)

    return _timed(pages, warm, read, 2)


def tesseract_files(pages: list[Page], folder: Path) -> list[Path]:
    paths = []
    for k, page in enumerate(pages):
        path = folder / f"{k:03d}.ppm"  # uncompressed: next to nothing to decode
        page.image.save(path)
        paths.append(path)
    return paths


def _tesseract(paths: list[Path], out: Path, env: dict) -> subprocess.Popen:
    listing = out.with_suffix(".list")
    listing.write_text("".join(f"{p}\n" for p in paths))
    command = ["tesseract", str(listing), str(out), "--psm", "3", "--dpi", "150", "-l", "eng"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_tesseract(paths: list[Path], *, processes: int, folder: Path) -> tuple[list[str], float]:
    env = dict(os.environ)
    if processes > 1:
        env["OMP_THREAD_LIMIT"] = "1"
    shares = [list(range(k, len(paths), processes)) for k in range(processes)]
    started = time.perf_counter()
    running = [
        _tesseract([paths[i] for i in share], folder / f"out{k}", env)
        for k, share in enumerate(shares)
    ]
    for proc in running:
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"tesseract failed: {err.decode(errors='replace')[-500:]}")
    seconds = time.perf_counter() - started
    texts = [""] * len(paths)
    for k, share in enumerate(shares):
        # One text file per process, pages separated by a form feed (page_separator).
        parts = (folder / f"out{k}.txt").read_text(encoding="utf-8").split("\f")
        for i, part in zip(share, parts):
            texts[i] = part
    return texts, seconds


def tesseract_version() -> str:
    done = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    return " ".join((done.stdout + done.stderr).split("\n")[:2]).strip()


# -- accuracy ---------------------------------------------------------------------------
_PLAIN = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_PLAIN).lower()
    return re.sub(r"\s+", " ", text).strip()


def words(text: str) -> Counter:
    return Counter(re.findall(r"\w+", normalise(text)))


def score(texts: list[str], pages: list[Page]) -> dict:
    from rapidfuzz.distance import Levenshtein

    edits = chars = found = total = 0
    per_page = []
    for text, page in zip(texts, pages):
        truth, got = normalise(page.truth), normalise(text)
        distance = Levenshtein.distance(got, truth)
        edits += distance
        chars += len(truth)
        want, have = words(page.truth), words(text)
        hit = sum(min(n, have[w]) for w, n in want.items())
        found += hit
        total += sum(want.values())
        per_page.append(
            {
                "page": page.name,
                "cer": round(distance / max(1, len(truth)), 4),
                "word_recall": round(hit / max(1, sum(want.values())), 4),
            }
        )
    return {
        "cer": round(edits / max(1, chars), 4),
        "word_recall": round(found / max(1, total), 4),
        "truth_chars": chars,
        "pages_detail": per_page,
    }


# -- main -------------------------------------------------------------------------------
def _cpu_seconds() -> float:
    """User + system time of this process's threads and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def commit_info() -> dict:
    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip()

    ocr_file = ROOT / "src" / "polylens" / "encoders" / "ocr.py"
    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "src")),
        "ocr_py_sha256_12": hashlib.sha256(ocr_file.read_bytes()).hexdigest()[:12],
    }


def environment() -> dict:
    from importlib.metadata import version

    import numpy
    import onnxruntime
    import PIL
    import rapidfuzz

    return {
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "rapidocr_onnxruntime": version("rapidocr-onnxruntime"),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "rapidfuzz": rapidfuzz.__version__,
        "tesseract": tesseract_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manual-pages", type=int, default=24)
    parser.add_argument("--cranfield-pages", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    if unknown := set(systems) - set(SYSTEMS):
        parser.error(f"unknown system(s) {sorted(unknown)}; use {', '.join(SYSTEMS)}")
    if any(s.startswith("tesseract") for s in systems) and shutil.which("tesseract") is None:
        raise SystemExit("tesseract not found: apt-get install -y tesseract-ocr tesseract-ocr-eng")

    config = IndexConfig()
    corpora = {
        "manuals": manual_pages(args.manual_pages, args.seed, config),
        "cranfield": cranfield_pages(args.cranfield_pages, args.seed, config),
    }
    result: dict = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "env": environment(),
        "commit": commit_info(),
        "corpora": {
            name: {"pages": len(pages), "page_names": [p.name for p in pages]}
            for name, pages in corpora.items()
        },
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="ocr-speed-") as tmp:
        for corpus, pages in corpora.items():
            folder = Path(tmp) / corpus
            folder.mkdir()
            paths = tesseract_files(pages, folder)
            for system in systems:
                with cpu_lock(args.lock):
                    if system == "polylens":
                        texts, seconds, cpu = run_polylens(pages, workers=2, threads=1)
                    elif system == "polylens-1x2":
                        texts, seconds, cpu = run_polylens(pages, workers=1, threads=2)
                    elif system == "rapidocr":
                        texts, seconds, cpu = run_rapidocr(pages)
                    else:
                        run_tesseract(paths[:1], processes=1, folder=folder)  # warm the cache
                        processes = 2 if system == "tesseract-1x2" else 1
                        before = _cpu_seconds()
                        texts, seconds = run_tesseract(paths, processes=processes, folder=folder)
                        cpu = _cpu_seconds() - before
                row = {
                    "pages": len(pages),
                    "seconds": round(seconds, 2),
                    "pages_per_s": round(len(pages) / seconds, 3),
                    "cpu_s_per_page": round(cpu / len(pages), 3),
                    **score(texts, pages),
                }
                result["results"].setdefault(corpus, {})[system] = row
                print(
                    f"{corpus:9} {system:14} {row['pages_per_s']:6.3f} pages/s  "
                    f"{row['cpu_s_per_page']:5.2f} CPU s/page  "
                    f"CER {row['cer']:.4f}  word recall {row['word_recall']:.4f}",
                    flush=True,
                )
    summarise(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out}")


def summarise(result: dict) -> None:
    print(
        f"\n{'corpus':9} {'system':14} {'pages':>5} {'pages/s':>8} {'CPU s/p':>8} "
        f"{'CER':>7} {'recall':>7}"
    )
    for corpus, rows in result["results"].items():
        for system, row in rows.items():
            print(
                f"{corpus:9} {system:14} {row['pages']:>5} {row['pages_per_s']:>8.3f} "
                f"{row['cpu_s_per_page']:>8.2f} {row['cer']:>7.4f} {row['word_recall']:>7.4f}"
            )
        tess = [r for s, r in rows.items() if s.startswith("tesseract")]
        if "polylens" in rows and tess:
            best = max(tess, key=lambda r: r["pages_per_s"])
            ratio = rows["polylens"]["pages_per_s"] / best["pages_per_s"]
            rows["polylens"]["speed_over_best_tesseract"] = round(ratio, 3)
            rows["polylens"]["cer_minus_best_tesseract"] = round(
                rows["polylens"]["cer"] - best["cer"], 4
            )
            print(
                f"{corpus:9} polylens / best tesseract: {ratio:.2f}x pages/s, "
                f"CER {rows['polylens']['cer']:.4f} vs {best['cer']:.4f}"
            )


if __name__ == "__main__":
    main()
