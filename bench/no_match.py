"""How often "no good match" is said: for answerable queries (it should not be, <= 5 %) and
unanswerable ones (it should be, >= 90 %), off-topic and near the corpus's topics.

Sets (bench/data/no_match/, bench/data/documents/; all written by hand for polylens):
  cranfield   the development queries (answerable, judged) against the hand-written
              cranfield_offtopic and cranfield_near sets, over the Cranfield abstracts;
  samples     samples_answerable against samples_unanswerable, over samples/;
  documents   the documents benchmark's questions against its unanswerable ones, over
              the Debian PDF manuals (when installed; see bench/data/documents/README.md).
The unanswerable Cranfield sets are split in halves: the confidence curves were fitted on
the even positions (bench/calibrate.py), so the odd ones ("check") are unseen.

    python bench/no_match.py                    # all sets, the index's default threshold
    python bench/no_match.py --sets cranfield   # one corpus

Prints, per set, the share of queries with no good match (all of their first ten hits weak)
at the default threshold, and
a threshold sweep; writes bench/results/no_match.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _confidence import CRANFIELD, NO_MATCH, REPO, cranfield_index, read_jsonl  # noqa: E402

from polylens.config import IndexConfig  # noqa: E402

DOCUMENTS = HERE / "data" / "documents"
SWEEP = [round(t, 2) for t in np.arange(0.05, 0.96, 0.05)]


def best_confidences(index: Any, queries: list[dict[str, Any]], key: str = "text") -> list[float]:
    """Each query's highest confidence among its first ten hits (0 when nothing was found):
    a query has no good match when this is below the threshold."""
    out = []
    for entry in queries:
        hits = index.search(entry[key], k=10)
        out.append(max((float(h.confidence or 0.0) for h in hits), default=0.0))
    return out


def cranfield_sets(work: Path, data: Path) -> list[dict]:
    index, dataset, _ = cranfield_index(work / "cranfield", data)
    queries = [{"text": dataset.queries[q].text} for q in sorted(dataset.queries, key=int)]
    rows = [
        {"set": "cranfield dev queries", "answerable": True, "p": best_confidences(index, queries)}
    ]
    for name in ("offtopic", "near"):
        entries = read_jsonl(NO_MATCH / f"cranfield_{name}.jsonl")
        for half, picked in (("fit", entries[0::2]), ("check", entries[1::2])):
            rows.append(
                {
                    "set": f"cranfield {name} ({half})",
                    "answerable": False,
                    "p": best_confidences(index, picked),
                }
            )
    index.close()
    return rows


def samples_sets(work: Path) -> list[dict]:
    import polylens

    folder = work / "samples"
    if not folder.exists():
        shutil.copytree(REPO / "samples", folder)
    index = polylens.open(work / "samples-index")
    index.add([folder])
    answerable = read_jsonl(NO_MATCH / "samples_answerable.jsonl")
    # A query about what a photo shows is answerable only with an image-text model; without
    # one (offline, the default is unavailable) saying "no good match" is right for it.
    pictures = [e for e in answerable if all(_picture_only(p) for p in e["expect"])]
    words = [e for e in answerable if e not in pictures]
    has_images = any(r.name == "image" and r.available for r in index.status().representations)
    rows = [
        {
            "set": "samples answerable (text)",
            "answerable": True,
            "p": best_confidences(index, words),
        },
        {
            "set": "samples answerable (pictures)" + ("" if has_images else ", no image model"),
            "answerable": has_images,
            "p": best_confidences(index, pictures),
        },
    ]
    unanswerable = read_jsonl(NO_MATCH / "samples_unanswerable.jsonl")
    for kind in ("offtopic", "near"):
        picked = [e for e in unanswerable if e.get("kind") == kind]
        rows.append(
            {"set": f"samples {kind}", "answerable": False, "p": best_confidences(index, picked)}
        )
    index.close()
    return rows


def _picture_only(path: str) -> bool:
    """A sample whose content is a picture with no text to read."""
    return path.startswith("photos/") or path == "scans/handwriting.png"


def documents_sets(work: Path, pdf_dir: Path | None) -> list[dict]:
    import polylens

    questions = read_jsonl(DOCUMENTS / "questions.jsonl")
    unanswerable = read_jsonl(DOCUMENTS / "unanswerable.jsonl")
    if not questions:
        return []
    from _documents import CORPUS, gather_pdfs  # the documents benchmark's manuals

    folder = work / "documents"
    if not folder.exists():
        gather_pdfs([m.name for m in CORPUS], folder, pdf_dir)
    index = polylens.open(work / "documents-index")
    index.add([folder])
    rows = [
        {
            "set": "documents questions",
            "answerable": True,
            "p": best_confidences(index, questions, key="question"),
        },
        {
            "set": "documents unanswerable",
            "answerable": False,
            "p": best_confidences(index, unanswerable, key="question"),
        },
    ]
    index.close()
    return rows


def weak_share(p: list[float], threshold: float) -> float:
    return float(np.mean(np.array(p) < threshold)) if p else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default="cranfield,samples,documents")
    parser.add_argument("--data", type=Path, default=CRANFIELD)
    parser.add_argument("--work", type=Path, default=REPO / ".bench-work" / "no_match")
    parser.add_argument("--pdf-dir", type=Path, default=None)
    parser.add_argument("--threshold", type=float, default=None, help="default: weak_below's")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "no_match.json")
    args = parser.parse_args()

    started = time.perf_counter()
    chosen = args.sets.split(",")
    rows: list[dict] = []
    # the default of a fresh index (an existing index keeps the value its polylens.toml has)
    threshold = args.threshold if args.threshold is not None else IndexConfig().weak_below
    if "cranfield" in chosen:
        rows += cranfield_sets(args.work, args.data)
    if "samples" in chosen:
        rows += samples_sets(args.work)
    if "documents" in chosen:
        rows += documents_sets(args.work, args.pdf_dir)

    print(
        f"weak_below = {threshold}  (share of queries with no good match: their first ten hits all weak)"
    )
    print(f"{'set':34} {'queries':>7} {'weak':>7} {'target':>8}  median p")
    for row in rows:
        row["queries"] = len(row["p"])
        row["weak_share"] = weak_share(row["p"], threshold)
        row["target"] = "<= 0.05" if row["answerable"] else ">= 0.90"
        row["meets_target"] = (
            row["weak_share"] <= 0.05 if row["answerable"] else row["weak_share"] >= 0.90
        )
        median = float(np.median(row["p"])) if row["p"] else float("nan")
        print(
            f"{row['set']:34} {row['queries']:7d} {row['weak_share']:7.3f} {row['target']:>8}"
            f"  {median:.3f}{'' if row['meets_target'] else '  (misses)'}"
        )
    print("\nsweep: threshold, then the weak share of each set in the order above")
    sweep = []
    for t in SWEEP:
        shares = [weak_share(r["p"], t) for r in rows]
        sweep.append({"threshold": t, "weak_share": shares})
        print(f"{t:5.2f}  " + " ".join(f"{s:5.2f}" for s in shares))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "python " + " ".join(sys.argv),
                "date": dt.date.today().isoformat(),
                "weak_below": threshold,
                "rows": rows,
                "sweep": sweep,
                "sets": [r["set"] for r in rows],
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
