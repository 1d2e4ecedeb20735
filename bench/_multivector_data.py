"""Synthetic ColPali-like pages and text queries for bench/multivector.py.

Real page embeddings (ColPali, ColQwen2) are not isotropic noise: a page's patches fall into
a few *regions* (a paragraph, a figure, a table) whose patches resemble each other, many
patches are near-blank background that looks the same on every page, and every vector
shares a common direction (the model's anisotropy), so all dot products are positive and
crowded. A text query's tokens are partly content words (matching one region of the right
page strongly and pages on the same topic weakly), partly generic words and padding tokens
that match every page about equally. This generator reproduces those traits:

* ``N_TOPICS`` topic centres (popularity log-normal), each with ``CONCEPTS`` concept vectors
  (cos to the topic ~0.6, to a sibling concept ~0.35); ``N_BLANK`` blank prototypes that
  resemble each other (cos ~0.6); one shared direction ``g``.
* A page (grid ``rows x cols``, row-major, cut to ``patches``) has a main topic and, half the
  time, a second one; it uses 6 + 3 of their concepts. Each grid row is blank with the page's
  blank share (20-60 %) or shows a concept, often continuing the row above (a region spans
  rows); content rows may split into two regions side by side and may have blank margins.
  A patch = normalise(0.35 g + 0.75 source + 0.5 noise + 0.15 page style) for content,
  normalise(0.35 g + 0.85 blank + 0.25 noise) for blank (cos to its concept ~0.75).
* A query (15-30 tokens) comes from a random source page: ~50 % content tokens (a concept
  the page shows, weighted by its area, cos to the page's patches of that concept ~0.7),
  ~15 % topic tokens, the rest filler tokens drawn from ``N_FILLER`` shared prototypes.

Pages are written in chunks of ~``CHUNK_VECTORS`` vectors with one seed per chunk, straight into a
``PatchStore`` (fp16 memmap file), so generating 1M x 64 x 128 (16 GB) needs ~100 MB of RAM;
the first ``n`` pages of a bigger corpus are the ``n``-page corpus. Each page's patch labels
(which concept or blank made each patch) are kept beside the store for making queries.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from polylens.search.patch_store import PatchStore

SEED = 20260301
N_TOPICS = 2000
CONCEPTS = 48
N_BLANK = 6
N_FILLER = 16
CHUNK_VECTORS = 320_000  # vectors generated at a time (~160 MB of float32 each array)
PAGE_CONCEPTS = (6, 3)  # concepts from the main / second topic


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def chunk_pages(patches: int) -> int:
    return max(100, CHUNK_VECTORS // patches // 100 * 100)


def grid_shape(patches: int) -> tuple[int, int]:
    rows = max(1, int(round(np.sqrt(patches))))
    cols = -(-patches // rows)
    return rows, cols


class PageModel:
    """The shared vectors: topics, concepts, blanks, fillers, the common direction."""

    def __init__(self, dim: int, seed: int = SEED) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.g = _unit(rng.standard_normal(dim)).astype(np.float32)
        self.topics = _unit(rng.standard_normal((N_TOPICS, dim))).astype(np.float32)
        noise = _unit(rng.standard_normal((N_TOPICS, CONCEPTS, dim)))
        self.concepts = _unit(0.6 * self.topics[:, None, :] + 0.8 * noise).astype(np.float32)
        blank0 = _unit(rng.standard_normal(dim))
        self.blanks = _unit(0.75 * blank0 + 0.65 * _unit(rng.standard_normal((N_BLANK, dim))))
        self.blanks = self.blanks.astype(np.float32)
        self.fillers = _unit(rng.standard_normal((N_FILLER, dim))).astype(np.float32)
        w = rng.lognormal(0.0, 1.0, N_TOPICS)
        self.topic_p = w / w.sum()
        # label -> source vector: 0..N_BLANK-1 blanks, then topic * CONCEPTS + concept
        self.sources = np.concatenate([self.blanks, self.concepts.reshape(-1, dim)])

    def concept_label(self, topic: np.ndarray, concept: np.ndarray) -> np.ndarray:
        return N_BLANK + topic * CONCEPTS + concept

    # -- pages -------------------------------------------------------------------------
    def page_labels(self, rng: np.random.Generator, n: int, patches: int) -> np.ndarray:
        """(n, patches) int32 labels: < N_BLANK blank, else a concept label."""
        rows, cols = grid_shape(patches)
        t1 = rng.choice(N_TOPICS, n, p=self.topic_p)
        t2 = np.where(rng.random(n) < 0.5, rng.choice(N_TOPICS, n, p=self.topic_p), t1)
        c1 = rng.integers(0, CONCEPTS, (n, PAGE_CONCEPTS[0]))
        c2 = rng.integers(0, CONCEPTS, (n, PAGE_CONCEPTS[1]))
        page_concepts = np.concatenate(
            [
                self.concept_label(t1[:, None], c1),
                self.concept_label(t2[:, None], c2),
            ],
            axis=1,
        )  # (n, 9)
        nc = page_concepts.shape[1]
        blank_share = rng.uniform(0.2, 0.6, n)
        # rows: blank or a concept (often the one of the row above: regions span rows)
        row_blank = rng.random((n, rows)) < blank_share[:, None]
        pick = rng.integers(0, nc, (n, rows))
        cont = rng.random((n, rows)) < 0.6
        for r in range(1, rows):
            pick[:, r] = np.where(cont[:, r], pick[:, r - 1], pick[:, r])
        left = np.take_along_axis(page_concepts, pick, axis=1)  # (n, rows)
        right = np.take_along_axis(page_concepts, rng.integers(0, nc, (n, rows)), axis=1)
        split = rng.random((n, rows)) < 0.3
        cut = rng.integers(max(1, cols // 3), max(2, cols - cols // 3) + 1, (n, rows))
        col = np.arange(cols)
        lab = np.where(
            split[:, :, None] & (col[None, None, :] >= cut[:, :, None]),
            right[:, :, None],
            left[:, :, None],
        )  # (n, rows, cols)
        blank_id = rng.integers(0, N_BLANK, (n, 1, 1))
        margin_l = (rng.random((n, 1)) < 0.5)[:, :, None] & (col == 0)[None, None, :]
        margin_r = (rng.random((n, 1)) < 0.5)[:, :, None] & (col == cols - 1)[None, None, :]
        blank = row_blank[:, :, None] | margin_l | margin_r
        lab = np.where(blank, blank_id, lab)
        return lab.reshape(n, rows * cols)[:, :patches].astype(np.int32)

    def page_vectors(self, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
        """(n, patches, dim) float32 unit vectors for a block of page labels."""
        n, p = labels.shape
        d = self.dim
        src = self.sources[labels]  # (n, p, d)
        is_blank = (labels < N_BLANK)[:, :, None]
        noise = rng.standard_normal((n, p, d), dtype=np.float32) / np.float32(np.sqrt(d))
        style = _unit(rng.standard_normal((n, 1, d), dtype=np.float32))
        content = 0.75 * src + 0.5 * noise + 0.15 * style
        blank = 0.85 * src + 0.25 * noise
        v = np.where(is_blank, blank, content) + 0.35 * self.g
        return _unit(v).astype(np.float32)

    # -- queries -----------------------------------------------------------------------
    def query(self, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
        """Token vectors (m, dim) of a query written about the page with ``labels``."""
        d = self.dim
        m = int(rng.integers(15, 31))
        content_labels = labels[labels >= N_BLANK]
        n_content = int(round(0.5 * m))
        n_topic = int(round(0.15 * m))
        n_filler = m - n_content - n_topic
        if len(content_labels) == 0:  # an all-blank page: topic words only
            n_topic += n_content
            n_content = 0
            topic = int(rng.integers(0, N_TOPICS))
        else:
            topic = int((content_labels[0] - N_BLANK) // CONCEPTS)
        toks = []
        if n_content:
            lab = rng.choice(content_labels, n_content)  # weighted by area
            src = self.sources[lab]
            toks.append(0.3 * self.g + 0.7 * src + 0.55 * _noise(rng, n_content, d))
        if n_topic:
            src = np.repeat(self.topics[topic][None], n_topic, axis=0)
            toks.append(0.3 * self.g + 0.7 * src + 0.55 * _noise(rng, n_topic, d))
        if n_filler:
            src = self.fillers[rng.integers(0, N_FILLER, n_filler)]
            toks.append(0.45 * self.g + 0.8 * src + 0.3 * _noise(rng, n_filler, d))
        q = _unit(np.concatenate(toks)).astype(np.float32)
        return q[rng.permutation(m)]


def _noise(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d)).astype(np.float32) / np.float32(np.sqrt(d))


class PageCorpus:
    """A store of ``patches``-vector pages under ``root``, grown on demand by ``ensure``."""

    def __init__(self, root: Path, patches: int, dim: int) -> None:
        self.root = Path(root) / f"pages-p{patches}-d{dim}"
        self.patches = patches
        self.dim = dim
        self.model = PageModel(dim)
        self.labels_path = self.root / "labels.i32"

    def store(self) -> PatchStore:
        if (self.root / PatchStore.OFFSETS).exists():
            return PatchStore.open(self.root)
        return PatchStore.create(self.root, self.dim)

    def ensure(self, n: int, log: bool = True) -> PatchStore:
        """Make sure the first ``n`` pages exist (whole chunks); returns the store."""
        store = self.store()
        have = len(store)
        chunk = chunk_pages(self.patches)
        if have % chunk:
            raise RuntimeError(f"{self.root}: {have} pages is not whole chunks; delete it")
        t0 = time.perf_counter()
        c = have // chunk
        while len(store) < n:
            rng = np.random.default_rng([SEED, self.patches, self.dim, c])
            labels = self.model.page_labels(rng, chunk, self.patches)
            vecs = self.model.page_vectors(rng, labels)
            # labels first: a chunk counts once its vectors (and offsets) are in the store
            with open(self.labels_path, "r+b" if self.labels_path.exists() else "wb") as fh:
                fh.seek(c * chunk * self.patches * 4)
                fh.write(labels.tobytes())
            store.append_flat(vecs.reshape(-1, self.dim), np.full(chunk, self.patches, np.int64))
            c += 1
            if log and c % 20 == 0:
                rate = (len(store) - have) / (time.perf_counter() - t0)
                print(f"  data: {len(store):,} pages ({rate:,.0f} pages/s)", flush=True)
        return store

    def labels(self, n: int) -> np.ndarray:
        return np.memmap(self.labels_path, dtype=np.int32, mode="r", shape=(n, self.patches))

    def queries(self, n: int, count: int, seed: int = 7) -> tuple[list[np.ndarray], np.ndarray]:
        """``count`` queries about random pages among the first ``n``; (queries, sources)."""
        rng = np.random.default_rng([SEED, seed, n])
        sources = rng.integers(0, n, count)
        labels = self.labels(n)
        return [self.model.query(rng, np.asarray(labels[s])) for s in sources], sources

    def describe(self) -> dict:
        return {
            "generator": "bench/_multivector_data.py",
            "seed": SEED,
            "topics": N_TOPICS,
            "concepts_per_topic": CONCEPTS,
            "blank_prototypes": N_BLANK,
            "filler_prototypes": N_FILLER,
            "patches": self.patches,
            "grid": list(grid_shape(self.patches)),
            "dim": self.dim,
        }


def similarity_profile(corpus: PageCorpus, n: int, queries: list[np.ndarray], sources) -> dict:
    """Sanity numbers for the docs: typical patch-patch and query-patch cosines."""
    store = corpus.ensure(n, log=False)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, n, 200)
    a = np.concatenate([np.asarray(store.page(int(r)), np.float32) for r in rows[:100]])
    b = np.concatenate([np.asarray(store.page(int(r)), np.float32) for r in rows[100:]])
    cross = (a[:2000] @ b[:2000].T).ravel()
    own, other = [], []
    for q, s in zip(queries[:50], sources[:50]):
        page = np.asarray(store.page(int(s)), np.float32)
        own.append(float((q @ page.T).max(1).mean()))
        rnd = np.asarray(store.page(int(rng.integers(0, n))), np.float32)
        other.append(float((q @ rnd.T).max(1).mean()))
    return {
        "patch_patch_cos_mean": round(float(cross.mean()), 3),
        "patch_patch_cos_p99": round(float(np.percentile(cross, 99)), 3),
        "query_source_page_maxsim_per_token": round(float(np.mean(own)), 3),
        "query_random_page_maxsim_per_token": round(float(np.mean(other)), 3),
    }


if __name__ == "__main__":  # quick look: python bench/_multivector_data.py
    import sys

    work = Path(__file__).resolve().parent.parent / ".bench-work" / "multivector"
    corpus = PageCorpus(work, 64, 128)
    corpus.ensure(20_000)
    qs, src = corpus.queries(20_000, 50)
    print(json.dumps(similarity_profile(corpus, 20_000, qs, src), indent=1))
    sys.exit(0)
