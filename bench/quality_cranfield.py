"""Retrieval quality on the Cranfield collection (development half), text and page-image modes.

(a) text mode: every abstract is a text file, indexed as a user's notes folder would be;
(b) page-image mode: every abstract is rendered to a page image (plain typography) and
    indexed through the image/OCR path, as a scanned archive would be.
References in the same run: bm25s, plain sentence-transformers all-MiniLM-L6-v2 brute
force, and their reciprocal rank fusion computed by ranx.

    python bench/quality_cranfield.py                  # both modes, prints a table
    python bench/quality_cranfield.py --modes text     # text mode only (a few minutes)

Writes bench/results/quality_cranfield.json. Only the development half is used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _cranfield_refs import bm25s_run, minilm_run, rrf_run  # noqa: E402
from _render_pages import render_corpus  # noqa: E402

from polylens.eval.datasets import Doc, EvalDataset, load_beir  # noqa: E402
from polylens.eval.runner import score  # noqa: E402
from polylens.eval.session import evaluate_dataset  # noqa: E402

METRICS = ["ndcg@10", "map@100", "recall@100"]


def polylens_rows(dataset: EvalDataset, work: Path, mode: str, settings: dict) -> list[dict]:
    started = time.perf_counter()
    report, summary = evaluate_dataset(dataset, work_dir=work, settings=settings, metrics=METRICS)
    seconds = time.perf_counter() - started
    rows = []
    for result in report.results:
        rows.append(
            {
                "system": f"polylens {result.name}",
                "mode": mode,
                **{m: result.metrics[m] for m in METRICS},
                "p50_ms": result.latency_ms["p50"],
            }
        )
    rows[0]["index_seconds"] = summary.seconds
    rows[0]["total_seconds"] = seconds
    rows[0]["index_failed"] = summary.failed
    return rows


def reference_rows(corpus: dict, queries: dict, qrels: dict) -> list[dict]:
    rows = []
    runs = {}
    for name, fn in (("bm25s", bm25s_run), ("minilm (sentence-transformers)", minilm_run)):
        started = time.perf_counter()
        runs[name] = fn(corpus, queries, k=100)
        seconds = time.perf_counter() - started
        rows.append(
            {
                "system": name,
                "mode": "text",
                **score(qrels, runs[name], METRICS),
                "seconds": seconds,
            }
        )
    fused = rrf_run(list(runs.values()), k=100)
    rows.append(
        {"system": "rrf(bm25s, minilm) via ranx", "mode": "text", **score(qrels, fused, METRICS)}
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cranfield")
    parser.add_argument("--work", type=Path, default=REPO / ".bench-work" / "cranfield")
    parser.add_argument("--modes", default="text,page")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quality_cranfield.json")
    args = parser.parse_args()

    dataset = load_beir(args.data, "dev")
    dataset.validate()
    corpus = {d: {"title": doc.title, "text": doc.text} for d, doc in dataset.corpus.items()}
    queries = {q: query.text for q, query in dataset.queries.items()}
    # The default offline configuration: bundled MiniLM, BM25, OCR. No image-text model is
    # reachable offline, and none would help on text-only pages, so it is not requested.
    settings = {"image_model": "none"}

    rows = reference_rows(corpus, queries, dataset.qrels)
    modes = args.modes.split(",")
    if "text" in modes:
        rows += polylens_rows(dataset, args.work / "text", "text", settings)
    if "page" in modes:
        started = time.perf_counter()
        pages = render_corpus(corpus, args.work / "pages-png")
        render_seconds = time.perf_counter() - started
        page_ds = EvalDataset(
            "cranfield-pages",
            {d: Doc(path=pages[d]) for d in dataset.corpus},
            dataset.queries,
            dataset.qrels,
            source=str(args.data) + "#pages",
        )
        page_rows = polylens_rows(
            page_ds, args.work / "page", "page-image", {**settings, "ocr": True}
        )
        page_rows[0]["render_seconds"] = render_seconds
        rows += page_rows

    best_ref = max(r["ndcg@10"] for r in rows if not r["system"].startswith("polylens"))
    text_default = next(
        (r for r in rows if r["system"] == "polylens hybrid" and r["mode"] == "text"), None
    )
    page_default = next(
        (r for r in rows if r["system"] == "polylens hybrid" and r["mode"] == "page-image"), None
    )

    header = f"{'system':34} {'mode':11} " + " ".join(f"{m:>10}" for m in METRICS)
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['system']:34} {r['mode']:11} " + " ".join(f"{r[m]:10.4f}" for m in METRICS))
    summary = {"best_reference_ndcg@10": best_ref}
    if text_default:
        summary["default_text_vs_best_reference"] = text_default["ndcg@10"] / best_ref
        print(
            f"\npolylens default (hybrid, text) / best reference nDCG@10: {summary['default_text_vs_best_reference']:.3f}"
        )
    if text_default and page_default:
        summary["page_vs_text_ndcg@10"] = page_default["ndcg@10"] / text_default["ndcg@10"]
        print(f"page-image / text nDCG@10: {summary['page_vs_text_ndcg@10']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"split": "dev", "queries": len(queries), "rows": rows, "summary": summary}, indent=2
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
