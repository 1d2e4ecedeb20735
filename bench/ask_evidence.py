"""Evidence that `polylens ask` would send, on questions over real PDF manuals.

For each question of ``bench/data/documents`` (118 answerable, each with its answer
page; 36 that no page answers) the script runs ``ask``'s evidence step (no model
involved) and compares its adaptive choice (as many pages as the score distribution
says are good, at most ``max_evidence``) with what peers send in the same run: a fixed
top-k of the same search, as M3DocRAG (top-4 pages), VisRAG (top-3) and a plain
RAG pipeline (top-1 / top-6) do. Reported per method: evidence recall (the answer page
is among the pages sent), pages sent per question (the token cost), and how often
nothing is sent (abstaining: right for unanswerable questions, wrong for the others).

    python bench/ask_evidence.py --work .bench-work/documents   # index built once, ~5 min

The index is the default offline configuration over the six manuals' text layers
(``quality_documents.py`` builds the same); it is kept in the work folder and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "documents"
sys.path.insert(0, str(HERE))

import _documents as D  # noqa: E402
from _cpu_lock import cpu_lock  # noqa: E402

FIXED = {"top-1": 1, "VisRAG top-3": 3, "M3DocRAG top-4": 4, "top-6": 6}


def build_index(docs: Path, index_dir: Path, lock: str | None):  # noqa: ANN201
    import polylens

    if (index_dir / "polylens.toml").is_file():
        return polylens.open(index_dir, create=False)
    with cpu_lock(lock):
        ix = polylens.open(index_dir, create=True)
        summary = ix.add([docs])
    if summary.failed:
        raise SystemExit(f"{summary.failed} files failed to index: {summary.failures}")
    return ix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ask_evidence.json")
    parser.add_argument("--max-evidence", type=int, default=None, help="default: the setting's")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock", help="'' for no CPU lock")
    args = parser.parse_args()

    from polylens.ask.asker import Asker
    from polylens.ask.settings import resolve_settings

    answerable = D.load_questions(DATA / "questions.jsonl", answerable=True)
    unanswerable = D.load_questions(DATA / "unanswerable.jsonl", answerable=False)
    names = [m.name for m in D.CORPUS if m.name in {q.pdf for q in answerable}]
    work = args.work or Path(tempfile.mkdtemp(prefix="polylens-ask-evidence-"))
    docs = work / "pdfs"
    D.gather_pdfs(names, docs, None)
    started = time.perf_counter()
    ix = build_index(docs, work / "ask-index", args.lock or None)
    index_seconds = time.perf_counter() - started
    settings = resolve_settings(ix.config, max_evidence=args.max_evidence, env={})
    asker = Asker(ix, settings)

    methods = ["polylens adaptive", *FIXED]
    outcome: dict[str, dict[str, list]] = {
        m: {"found": [], "sent": [], "none_a": [], "none_u": []} for m in methods
    }
    for q in [*answerable, *unanswerable]:
        results, chosen = asker.gather(q.text)
        sent = {"polylens adaptive": chosen}
        for name, k in FIXED.items():
            sent[name] = list(results[:k])  # peers send their top k whatever the scores
        for name, hits in sent.items():
            pages = [(Path(h.path).name, h.page) for h in hits]
            row = outcome[name]
            row["sent"].append(len(pages))
            if q.answerable:
                row["found"].append(any((q.pdf, p) in pages for p in q.pages))
                row["none_a"].append(not pages)
            else:
                row["none_u"].append(not pages)

    def mean(values: list) -> float:
        return round(sum(map(float, values)) / len(values), 4) if values else float("nan")

    table = {
        name: {
            "evidence_recall": mean(row["found"]),
            "pages_sent": mean(row["sent"]),
            "nothing_sent_answerable": mean(row["none_a"]),
            "nothing_sent_unanswerable": mean(row["none_u"]),
        }
        for name, row in outcome.items()
    }
    print(
        f"{len(answerable)} answerable + {len(unanswerable)} unanswerable questions, "
        f"{len(names)} manuals; max_evidence={settings.max_evidence}"
    )
    header = (
        f"{'method':<20} {'recall':>7} {'pages sent':>11} {'none (ans.)':>12} {'none (unans.)':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, m in table.items():
        print(
            f"{name:<20} {m['evidence_recall']:>7.3f} {m['pages_sent']:>11.2f} "
            f"{m['nothing_sent_answerable']:>12.3f} {m['nothing_sent_unanswerable']:>14.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "questions": {"answerable": len(answerable), "unanswerable": len(unanswerable)},
                "manuals": names,
                "max_evidence": settings.max_evidence,
                "weak_below": settings.weak_below,
                "index_seconds": round(index_seconds, 1),
                "methods": table,
                "command": " ".join(["python", "bench/ask_evidence.py", *sys.argv[1:]]),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
