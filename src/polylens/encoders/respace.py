"""Spaces back into OCR lines that lost them.

The OCR model reads the gaps between words from the pixels; on a compressed scan (JPEG at
ordinary quality) it misses most of them and returns "Decompressionspeedisunaffectedby".
BM25 then sees one unknown token instead of five words, and the text embedder sees noise.
A line whose tokens are far longer than words are is re-split with wordninja (English word
frequencies, the most probable split). A line with normal spacing is left exactly as read,
so identifiers and code keep their form.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

MEAN_TOKEN_CHARS = 9.0
"""A line whose whitespace-separated tokens average more letters than this lost its
spaces (English prose averages about 5; code and identifiers rarely pass 9 on a line)."""
MIN_RUN = 8
"""Letter runs shorter than this are left alone even on such a line."""

_RUN = re.compile(rf"[A-Za-z]{{{MIN_RUN},}}")


@cache
def _splitter() -> Any:
    try:
        import wordninja
    except ImportError:  # an optional nicety: without it, lines stay as read
        return None
    return wordninja


def respace_line(line: str) -> str:
    """``line`` with its long letter runs split into words, when it lost its spaces."""
    tokens = line.split()
    letters = sum(ch.isalpha() for ch in line)
    if not tokens or letters < 2 * MIN_RUN or letters / len(tokens) <= MEAN_TOKEN_CHARS:
        return line
    splitter = _splitter()
    if splitter is None:
        return line
    return _RUN.sub(lambda m: _split_run(splitter, m.group(0)), line)


def _split_run(splitter: Any, run: str) -> str:
    words = splitter.split(run)
    # a run of unknown letters falls apart into single characters: keep it as read
    if len(words) < 2 or sum(len(w) == 1 for w in words) * 3 > len(words):
        return run
    return " ".join(words)


def respace(text: str) -> str:
    return "\n".join(respace_line(line) for line in text.split("\n"))
