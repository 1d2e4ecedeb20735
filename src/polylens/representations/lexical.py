"""BM25 over the read model's items, in memory, exact, with MaxScore-style pruning.

LanceDB's full-text index stays the BM25 of record (it is what a search uses whenever
the read model is stale). This copy exists for latency: a LanceDB FTS query costs
milliseconds of fixed overhead, more than the whole budget of a fused query at a million
items. The analyser mirrors the store's (lowercase, ASCII folding, Lucene's English stop
words, Snowball English stemming) so both rank alike.

Pruning: query terms are scored rarest first into a dense score array; once the
contributions every remaining (common) term could still add to a document not yet seen
cannot lift it past the current k-th best score, the remaining terms only update documents
already seen. Results equal exhaustive scoring.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polylens.analysis import K1, STOP_WORDS, B, analyse

__all__ = ["B", "K1", "STOP_WORDS", "Bm25Index", "Vocabulary", "analyse"]


class Vocabulary:
    """Term -> id, only ever growing, shared by successive read models of one index so a
    rebuild analyses only the texts it has not seen."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.cache: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()

    def terms_of(self, key: str, text: str) -> np.ndarray:
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        ids = self.ids
        terms = np.fromiter((ids.setdefault(t, len(ids)) for t in analyse(text)), dtype=np.int32)
        self.cache[key] = terms
        return terms

    def forget_except(self, keys: set[str]) -> None:
        for key in [k for k in self.cache if k not in keys]:
            del self.cache[key]


@dataclass
class Bm25Index:
    """Postings per term (doc-sorted doc ids with precomputed BM25 weights)."""

    vocabulary: Vocabulary
    starts: np.ndarray  # term id -> first posting; term t owns [starts[t], starts[t+1])
    docs: np.ndarray  # int32 doc rows
    weights: np.ndarray  # float32 idf * tf part
    upper: np.ndarray  # float32 per term: its largest weight
    n_docs: int

    @classmethod
    def build(cls, vocabulary: Vocabulary, keys: Sequence[str], texts: Sequence[str]) -> Bm25Index:
        with vocabulary.lock:
            per_doc = [vocabulary.terms_of(k, t) for k, t in zip(keys, texts, strict=True)]
            n_terms = len(vocabulary.ids)
        n_docs = len(per_doc)
        lengths = np.fromiter((len(p) for p in per_doc), dtype=np.int64, count=n_docs)
        if lengths.sum() == 0:
            empty = np.zeros(0, dtype=np.int32)
            return cls(
                vocabulary,
                np.zeros(n_terms + 1, np.int64),
                empty,
                np.zeros(0, np.float32),
                np.zeros(n_terms, np.float32),
                n_docs,
            )
        terms = np.concatenate(per_doc)
        doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # (term, doc) pairs with their counts: sort by term then doc, then run-length.
        key = terms.astype(np.int64) * n_docs + doc_of
        key.sort()
        unique, tf = np.unique(key, return_counts=True)
        term = (unique // n_docs).astype(np.int64)
        docs = (unique % n_docs).astype(np.int32)
        df = np.bincount(term, minlength=n_terms)
        avgdl = max(float(lengths.mean()), 1e-9)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = K1 * (1.0 - B + B * lengths[docs] / avgdl)
        weights = (idf[term] * tf * (K1 + 1.0) / (tf + norm)).astype(np.float32)
        starts = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=starts[1:])
        upper = np.zeros(n_terms, dtype=np.float32)
        np.maximum.at(upper, term, weights)
        return cls(vocabulary, starts, docs, weights, upper, n_docs)

    def _pool(
        self,
        scores: np.ndarray,
        seen: list[np.ndarray],
        seen_postings: int,
        allowed: np.ndarray | None,
    ) -> np.ndarray:
        """Distinct allowed documents scored so far (weights are positive, so a touched
        document has a positive score): a sort for short lists, a scan for long ones."""
        if seen_postings * 64 > self.n_docs:
            pool = np.flatnonzero(scores > 0)
        else:
            pool = np.unique(np.concatenate(seen)) if len(seen) > 1 else seen[0]
        return pool if allowed is None else pool[allowed[pool]]

    def attainable(self, query: str) -> float:
        """The most a document could score for ``query``: every distinct query term at
        its best weight in the index, and a term the index lacks at the weight it would
        have in the one document that had it. A hit's score over this is the share of
        the query's information it matched; a query word no document has (the topic
        the index does not cover) lowers every hit's share."""
        ids = self.vocabulary.ids
        unseen = float(np.log1p((self.n_docs + 0.5) / 0.5))
        total = 0.0
        for word in set(analyse(query)):
            t = ids.get(word)
            known = t is not None and t < len(self.upper) and self.starts[t + 1] > self.starts[t]
            total += float(self.upper[t]) if known else unseen
        return total

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Doc rows and BM25 scores of the ``k`` best allowed documents, best first."""
        ids = self.vocabulary.ids
        found = {ids[t] for t in analyse(query) if t in ids}
        terms = [t for t in found if t < len(self.upper) and self.starts[t + 1] > self.starts[t]]
        if not terms or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        terms.sort(key=lambda t: self.starts[t + 1] - self.starts[t])  # rarest first
        upper = np.array([self.upper[t] for t in terms], dtype=np.float64)
        remaining = np.concatenate([np.cumsum(upper[::-1])[::-1], [0.0]])
        scores = np.zeros(self.n_docs, dtype=np.float32)
        seen: list[np.ndarray] = []
        candidates: np.ndarray | None = None
        seen_postings = 0
        for i, t in enumerate(terms):
            lo, hi = self.starts[t], self.starts[t + 1]
            docs, weights = self.docs[lo:hi], self.weights[lo:hi]
            if candidates is None:
                scores[docs] += weights  # doc ids within one term are unique
                seen.append(docs)
                seen_postings += len(docs)
                # No document can score above the processed terms' bounds: while the
                # remaining terms could add more than that, nothing can be pruned yet.
                if i + 1 < len(terms) and remaining[i + 1] < remaining[0] - remaining[i + 1]:
                    pool = self._pool(scores, seen, seen_postings, allowed)
                    if len(pool) >= k:
                        # The k-th best of any subset bounds the k-th best from below, so
                        # a sample of a huge pool still prunes correctly, only later.
                        sample = pool[:: max(1, len(pool) // 65536)]
                        theta = np.partition(scores[sample], len(sample) - k)[len(sample) - k]
                        if remaining[i + 1] < theta:
                            candidates = pool  # no unseen document can reach the top k now
            elif len(candidates) * max(1, int(len(docs)).bit_length()) < len(docs):
                # Few candidates: look each up in this term's doc-sorted postings.
                at = np.searchsorted(docs, candidates)
                at[at >= len(docs)] = 0
                hit = docs[at] == candidates
                scores[candidates[hit]] += weights[at[hit]]
            else:
                scores[docs] += weights  # cheaper than lookups; non-candidates are ignored
        if candidates is None:
            candidates = self._pool(scores, seen, seen_postings, allowed)
        if len(candidates) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        top_scores = scores[candidates]
        if len(candidates) > k:
            part = np.argpartition(-top_scores, k - 1)[:k]
        else:
            part = np.arange(len(candidates))
        order = part[np.lexsort((candidates[part], -top_scores[part]))]
        return candidates[order].astype(np.int64), top_scores[order]
