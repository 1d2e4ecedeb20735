"""How text becomes BM25 terms, and the BM25 constants: one analyser for every engine.

The in-memory BM25 (:mod:`polylens.representations.lexical`) and a store that ranks BM25
itself (Qdrant's sparse vectors: :mod:`polylens.store.qdrant`) both analyse text here, so
an index ranks alike whichever engine holds it. The analyser mirrors LanceDB's full-text
index (lowercase, ASCII folding, Lucene's English stop words, Snowball English stemming).
"""

from __future__ import annotations

import re
import threading
import unicodedata

from polylens._lazy import import_or_raise

K1 = 1.2
B = 0.75

# Lucene's English stop words (what tantivy and so LanceDB's FTS remove).
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)
_WORD = re.compile(r"\w+")
_stemmers = threading.local()


def _stem(words: list[str]) -> list[str]:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        module = import_or_raise("Stemmer", package="PyStemmer")
        stemmer = _stemmers.english = module.Stemmer("english")
    return stemmer.stemWords(words)


def analyse(text: str) -> list[str]:
    """Terms of ``text`` as the index sees them."""
    text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    words = [w for w in _WORD.findall(text) if w not in STOP_WORDS]
    return _stem(words) if words else []
