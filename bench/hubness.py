"""Does a hubness correction help polylens's text embeddings? (Cranfield, dev half.)

Query-bank normalisation (QB-Norm / inverted softmax, the query-bank half of DBNorm): each
indexed vector's similarity to a query is lowered by how close it sits to a bank of other
queries, ``s'(q, g) = s(q, g) - beta * tau * logsumexp_b(s(b, g) / tau)``. The bank here is
the index's own vectors standing in for queries (1,024 sampled, a vector never counting
against itself). Measured on the dense-text ranking alone (nDCG@10), for a grid of
temperatures and strengths; ``raw`` is today's ranking.

    python bench/hubness.py        # writes bench/results/hubness.json

Text-to-text MiniLM retrieval shows little hubness; the correction is meant for
cross-modal (CLIP) retrieval, which cannot be measured offline here (no real weights).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _confidence import REPO, cranfield_index  # noqa: E402

from polylens.eval.runner import hubness, score  # noqa: E402


def main() -> None:
    work = REPO / ".bench-work" / "calibrate"
    index, dataset, mapping = cranfield_index(work)
    index.warm()
    searcher = index._searcher()  # noqa: SLF001 - the bench reads the vectors it measures
    part = searcher.reader.part("text")
    matrix = part.index.matrix
    model = next(b.model for b in searcher.bound if b.name == "text")
    ids = part.item_ids
    items, paths = searcher.reader.items_and_paths(list(ids))
    doc_of_row: dict[int, str] = {}
    for row, item_row in enumerate(part.item_rows):
        item = items.get(ids[item_row]) if item_row >= 0 else None
        found = sorted(paths.get(item["content_hash"], ())) if item else []
        if found and found[0] in mapping:
            doc_of_row[row] = mapping[found[0]]
    qids = list(dataset.queries)
    queries = model.embed_queries([dataset.queries[q].text for q in qids])
    similarity = queries @ matrix.T
    rng = np.random.default_rng(0)
    bank_rows = rng.choice(len(matrix), size=min(1024, len(matrix)), replace=False)
    bank = matrix[bank_rows] @ matrix.T
    bank[np.arange(len(bank_rows)), bank_rows] = -np.inf

    def run_of(scores: np.ndarray) -> dict:
        run = {}
        for qi, qid in enumerate(qids):
            docs: dict[str, float] = {}
            for row in np.argsort(-scores[qi])[:400]:
                doc = doc_of_row.get(int(row))
                if doc and doc not in docs:
                    docs[doc] = float(400 - len(docs))
                if len(docs) >= 100:
                    break
            run[qid] = docs
        return run

    rows = []
    raw = run_of(similarity)
    rows.append({"setting": "raw", **score(dataset.qrels, raw, ["ndcg@10"])})
    rows[-1]["skewness@10"] = hubness(raw, list(dataset.corpus))["skewness@10"]
    for tau in (0.02, 0.05, 0.1):
        scaled = bank / tau
        top = scaled.max(axis=0)
        norm = top + np.log(np.exp(scaled - top).sum(axis=0))
        for beta in (0.25, 0.5, 1.0):
            run = run_of(similarity - beta * tau * norm[None, :])
            rows.append(
                {
                    "setting": f"qb-norm tau={tau} beta={beta}",
                    **score(dataset.qrels, run, ["ndcg@10"]),
                    "skewness@10": hubness(run, list(dataset.corpus))["skewness@10"],
                }
            )
    print(f"{'setting':32} {'nDCG@10':>8} {'skew@10':>8}")
    for row in rows:
        print(f"{row['setting']:32} {row['ndcg@10']:8.4f} {row['skewness@10']:8.2f}")
    out = HERE / "results" / "hubness.json"
    out.write_text(
        json.dumps(
            {
                "command": "python bench/hubness.py",
                "date": dt.date.today().isoformat(),
                "vectors": int(len(matrix)),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    index.close()


if __name__ == "__main__":
    main()
