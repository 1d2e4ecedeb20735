"""Synthetic corpus for bench/query.py: clustered 512-d vectors, Zipf texts, kinds, queries.

Items are generated in chunks of ``CHUNK`` rows with a seed per chunk, so the first 100k
items of the 1M corpus *are* the 100k corpus (data and FAISS graphs are reused). Every
artefact is cached under ``.bench-work/query/data`` and rebuilt only when missing.

* vectors: ``n_clusters`` centres uniform on the sphere, cluster sizes log-normal, each
  item = normalise(centre + spread_c * g / sqrt(d)) with a per-cluster spread in
  [0.6, 1.2] (cos(item, centre) ~ 0.65-0.85, same-cluster pairs ~ 0.4-0.7, others ~ 0).
* texts: a 30k-word synthetic vocabulary (pronounceable, so the English stemmer leaves
  words alone); each item takes 8 words from its cluster's 15 topic words and 8 from the
  global Zipf(1.1) distribution, so BM25 has a cluster-level signal.
* kinds: 80 % image, 20 % page; pages are grouped 10 to a PDF file.
* queries: a random item's vector plus gaussian noise of norm 0.5, normalised (cos to the
  source item ~ 0.9), and a text of 3 of that item's topic words + 1 Zipf word.
* ground truth: exact top-10 by cosine (float32 matmul, chunked), over all items and over
  kind == image only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DIM = 512
CHUNK = 100_000
N_CLUSTERS = 2000
VOCAB = 30_000
TOPIC_WORDS = 15
PAGE_SHARE = 0.2
PAGES_PER_PDF = 10
QUERY_NOISE = 0.5
SEED = 20261127


def _vocabulary() -> list[str]:
    cons = "bdfgklmnprstvzhjw"
    vows = "aiou"
    syll = [c + v for c in cons for v in vows]  # 68 syllables
    rng = np.random.default_rng(SEED)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCAB:
        n = 2 if rng.random() < 0.4 else 3
        w = "".join(syll[i] for i in rng.integers(0, len(syll), n))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def _zipf_probs(n: int, a: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** a
    return p / p.sum()


class Corpus:
    """Lazily generated, cached corpus. ``root`` is ``.bench-work/query/data``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(SEED)
        centres = rng.standard_normal((N_CLUSTERS, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        weights = rng.lognormal(0.0, 1.0, N_CLUSTERS)
        self.cluster_p = weights / weights.sum()
        self.spread = rng.uniform(0.6, 1.2, N_CLUSTERS).astype(np.float32)
        self.words = _vocabulary()
        # topic words: drawn from the mid/long tail (ranks 300+), per cluster
        self.topics = rng.integers(300, VOCAB, (N_CLUSTERS, TOPIC_WORDS))
        self.zipf = _zipf_probs(VOCAB)

    # -- items -----------------------------------------------------------------
    def _chunk_paths(self, c: int) -> tuple[Path, Path]:
        return self.root / f"vec_{c:03d}.npy", self.root / f"meta_{c:03d}.parquet"

    def ensure_chunk(self, c: int) -> None:
        vpath, mpath = self._chunk_paths(c)
        if vpath.exists() and mpath.exists():
            return
        rng = np.random.default_rng(SEED + 1 + c)
        cl = rng.choice(N_CLUSTERS, CHUNK, p=self.cluster_p)
        vec = np.empty((CHUNK, DIM), dtype=np.float32)
        for s in range(0, CHUNK, 10_000):
            sl = slice(s, s + 10_000)
            g = rng.standard_normal((10_000, DIM), dtype=np.float32)
            g *= (self.spread[cl[sl]] / np.sqrt(DIM))[:, None]
            g += self.centres[cl[sl]]
            g /= np.linalg.norm(g, axis=1, keepdims=True)
            vec[sl] = g
        topic_pick = self.topics[cl[:, None], rng.integers(0, TOPIC_WORDS, (CHUNK, 8))]
        global_pick = rng.choice(VOCAB, (CHUNK, 8), p=self.zipf)
        tokens = np.concatenate([topic_pick, global_pick], axis=1)
        perm = rng.permuted(np.tile(np.arange(16), (CHUNK, 1)), axis=1)
        tokens = np.take_along_axis(tokens, perm, axis=1)
        words = self.words
        texts = [" ".join(words[t] for t in row) for row in tokens.tolist()]
        is_page = rng.random(CHUNK) < PAGE_SHARE
        kinds = np.where(is_page, "page", "image")
        tmp = vpath.with_suffix(".tmp.npy")
        np.save(tmp, vec)
        tmp.rename(vpath)
        pq.write_table(
            pa.table(
                {
                    "cluster": pa.array(cl.astype(np.int32)),
                    "kind": pa.array(kinds.tolist()),
                    "text": pa.array(texts),
                }
            ),
            mpath,
        )

    def ensure(self, n: int) -> None:
        assert n % CHUNK == 0, f"sizes must be multiples of {CHUNK}"
        for c in range(n // CHUNK):
            self.ensure_chunk(c)

    def vectors(self, n: int) -> np.ndarray:
        """(n, 512) float32, one copy in memory."""
        self.ensure(n)
        out = np.empty((n, DIM), dtype=np.float32)
        for c in range(n // CHUNK):
            out[c * CHUNK : (c + 1) * CHUNK] = np.load(self._chunk_paths(c)[0], mmap_mode="r")
        return out

    def vector_chunks(self, n: int):
        """Yield (start, chunk array) without holding all n in memory."""
        self.ensure(n)
        for c in range(n // CHUNK):
            yield c * CHUNK, np.load(self._chunk_paths(c)[0])

    def meta(self, n: int) -> pa.Table:
        self.ensure(n)
        return pa.concat_tables([pq.read_table(self._chunk_paths(c)[1]) for c in range(n // CHUNK)])

    # -- polylens-style identities ------------------------------------------------
    @staticmethod
    def file_numbers(kinds: np.ndarray) -> np.ndarray:
        """File number per item: images one file each, pages 10 to a PDF.

        Numbering is prefix-stable (item i's file does not depend on items after it)."""
        is_page = kinds == "page"
        page_rank = np.cumsum(is_page) - 1
        img_rank = np.cumsum(~is_page) - 1
        # even numbers: image files; odd numbers: pdf files
        return np.where(is_page, 2 * (page_rank // PAGES_PER_PDF) + 1, 2 * img_rank)

    @staticmethod
    def page_numbers(kinds: np.ndarray) -> np.ndarray:
        is_page = kinds == "page"
        page_rank = np.cumsum(is_page) - 1
        return np.where(is_page, page_rank % PAGES_PER_PDF + 1, 0)

    @staticmethod
    def content_hash(file_no: int) -> str:
        return hashlib.blake2b(f"file-{file_no}".encode(), digest_size=16).hexdigest()

    def item_ids(self, n: int, meta: pa.Table | None = None) -> np.ndarray:
        path = self.root / f"item_ids_{n}.npy"
        if path.exists():
            return np.load(path, allow_pickle=True)
        meta = meta if meta is not None else self.meta(n)
        kinds = np.asarray(meta.column("kind").to_pylist())
        files = self.file_numbers(kinds)
        pages = self.page_numbers(kinds)
        ids = np.empty(n, dtype=object)
        for i in range(n):
            h = self.content_hash(int(files[i]))
            ids[i] = f"{h}:i" if kinds[i] == "image" else f"{h}:p{pages[i]}"
        np.save(path, ids, allow_pickle=True)
        return ids

    # -- queries and ground truth --------------------------------------------------
    def queries(self, n: int, nq: int) -> dict:
        """{'vectors': (nq,512), 'texts': [...], 'source': (nq,)} cached per (n, nq)."""
        path = self.root / f"queries_{n}_{nq}.npz"
        if path.exists():
            z = np.load(path, allow_pickle=True)
            return {"vectors": z["vectors"], "texts": list(z["texts"]), "source": z["source"]}
        rng = np.random.default_rng(SEED + 7 + n)
        meta = self.meta(n)
        src = rng.choice(n, nq, replace=False)
        clusters = meta.column("cluster").to_numpy()
        vecs = np.empty((nq, DIM), dtype=np.float32)
        for c in sorted(set((src // CHUNK).tolist())):
            block = np.load(self._chunk_paths(c)[0], mmap_mode="r")
            sel = np.nonzero(src // CHUNK == c)[0]
            vecs[sel] = block[src[sel] - c * CHUNK]
        noise = rng.standard_normal((nq, DIM)).astype(np.float32)
        noise *= QUERY_NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
        vecs += noise
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        texts: list[str] = []
        seen: set[str] = set()
        texts_col = meta.column("text")
        for qi, i in enumerate(src.tolist()):
            item_words = list(dict.fromkeys(texts_col[i].as_py().split()))
            topic = {self.words[t] for t in self.topics[clusters[i]]}
            pool = [w for w in item_words if w in topic] or item_words
            while True:
                picked = list(rng.choice(pool, min(3, len(pool)), replace=False))
                picked.append(self.words[int(rng.choice(VOCAB, p=self.zipf))])
                text = " ".join(picked)
                if text not in seen:
                    break
                pool = item_words
            seen.add(text)
            texts.append(text)
        np.savez(path, vectors=vecs, texts=np.array(texts, dtype=object), source=src)
        return {"vectors": vecs, "texts": texts, "source": src}

    def ground_truth(self, n: int, nq: int, k: int = 10) -> dict:
        """Exact top-k (indices, scores) over all items and over images only."""
        path = self.root / f"gt_{n}_{nq}.npz"
        if path.exists():
            z = np.load(path)
            return {key: z[key] for key in z.files}
        q = self.queries(n, nq)["vectors"]
        meta = self.meta(n)
        is_img = np.asarray(meta.column("kind").to_pylist()) == "image"
        best = {
            "all": (np.full((nq, 0), -np.inf, np.float32), np.zeros((nq, 0), np.int64)),
            "image": (np.full((nq, 0), -np.inf, np.float32), np.zeros((nq, 0), np.int64)),
        }
        for start, block in self.vector_chunks(n):
            for s in range(0, block.shape[0], 25_000):
                part = block[s : s + 25_000]
                scores = q @ part.T  # (nq, 25k)
                base = start + s
                for key in ("all", "image"):
                    sc = scores
                    if key == "image":
                        mask = is_img[base : base + part.shape[0]]
                        sc = np.where(mask[None, :], scores, -np.inf)
                    top = np.argpartition(-sc, k, axis=1)[:, :k]
                    tsc = np.take_along_axis(sc, top, axis=1)
                    bs, bi = best[key]
                    allsc = np.concatenate([bs, tsc], axis=1)
                    alli = np.concatenate([bi, top + base], axis=1)
                    keep = np.argsort(-allsc, axis=1)[:, :k]
                    best[key] = (
                        np.take_along_axis(allsc, keep, axis=1),
                        np.take_along_axis(alli, keep, axis=1),
                    )
            del block
        out = {
            "all_idx": best["all"][1],
            "all_score": best["all"][0],
            "image_idx": best["image"][1],
            "image_score": best["image"][0],
        }
        np.savez(path, **out)
        return out


def recall_at_k(found: list[list] | np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean |found[:k] ∩ truth[:k]| / k over queries (found rows may be shorter)."""
    total = 0.0
    for f, t in zip(found, truth):
        total += len(set(list(f)[:k]) & set(t[:k].tolist())) / k
    return total / len(truth)


def describe(root: Path) -> dict:
    return json.loads(json.dumps({"dim": DIM, "clusters": N_CLUSTERS, "vocab": VOCAB}))
