"""An answer's text as sentences with the evidence numbers each one cites.

Written by hand, not with a sentence splitter library: citation markers close a
sentence *after* its full stop ("... in 1966. [2]" as often as "... in 1966 [2]."), and
general splitters cut such a marker off into a sentence of its own or glue it to the
next claim. Markers name evidence by number: ``[2]``, ``[1, 3]``, ``[1][3]``, ``[2-4]``;
a number the model was not given is dropped and counted, never shown as a link.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from polylens.ask.types import Sentence

_MARKER = re.compile(r"\[\s*(\d{1,4}(?:\s*(?:[,;]|[-\u2013])\s*\d{1,4})*)\s*\]")
_NUMBERS = re.compile(r"\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?")
_END = re.compile(r"[.!?\u3002]+[\"'\u201d\u2019)]*")
_TRAILING = re.compile(r"(?:\s*" + _MARKER.pattern + r")+")
_PENDING = re.compile(r"\s*(?:\[[^\]]*)?")
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf fig figs eq eqs no nos p pp vol ch sec mr mrs dr st al approx".split()
)
MAX_RANGE = 50
"""A range marker longer than this (``[1-999]``) is not a citation of every item."""


@dataclass(frozen=True)
class Parsed:
    sentences: list[Sentence]
    dropped: int


def parse_answer(text: str, valid: int) -> Parsed:
    """Split ``text`` into sentences; keep citations to ``1..valid``, count the rest."""
    sentences: list[Sentence] = []
    dropped = 0
    for raw in split_sentences(text):
        sentence, lost = parse_sentence(raw, valid)
        dropped += lost
        if sentence.text:
            sentences.append(sentence)
    return Parsed(sentences, dropped)


def parse_sentence(raw: str, valid: int) -> tuple[Sentence, int]:
    """One sentence's text without markers, its valid citations, and how many it lost."""
    cited: dict[int, None] = {}
    dropped = 0
    for marker in _MARKER.finditer(raw):
        for n in _numbers(marker.group(1)):
            if 1 <= n <= valid:
                cited.setdefault(n, None)
            else:
                dropped += 1
    clean = _MARKER.sub("", raw)
    clean = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(clean.split()))
    return Sentence(clean, tuple(cited), uncited=not cited and _is_claim(clean)), dropped


def split_sentences(text: str) -> list[str]:
    """Sentences and list items of an answer, each with the markers that follow it."""
    return [piece for piece, _ in _pieces(text, final=True)]


def complete_prefix(text: str) -> tuple[list[str], int]:
    """While streaming: the sentences of ``text`` that are certainly finished, and the
    offset where the unfinished rest starts. A sentence counts as finished only once
    something other than a marker follows its end, so its citations are final."""
    pieces = list(_pieces(text, final=False))
    return [p for p, _ in pieces], (pieces[-1][1] if pieces else 0)


def _pieces(text: str, *, final: bool) -> Iterator[tuple[str, int]]:
    start = 0
    for newline in re.finditer(r"\n", text):
        yield from _sentences_of_line(text, start, newline.end(), True)
        start = newline.end()
    if start < len(text):
        yield from _sentences_of_line(text, start, len(text), final)


def _sentences_of_line(text: str, start: int, stop: int, final: bool) -> Iterator[tuple[str, int]]:
    position = start
    for end in _END.finditer(text, start, stop):
        if _is_abbreviation(text, end.start()) or _is_number_point(text, end):
            continue
        if end.end() < stop and not (text[end.end()].isspace() or text[end.end()] == "["):
            continue  # "e.g.x", "file.pdf": no end without a space after it
        close = end.end()
        trailing = _TRAILING.match(text, close, stop)
        if trailing:
            close = trailing.end()
        if not final and _PENDING.fullmatch(text, close, stop):
            return  # a marker for this sentence may still arrive
        piece = text[position:close].strip()
        if piece:
            yield piece, close
        position = close
    if position < stop and final:
        piece = text[position:stop].strip()
        if piece:
            yield piece, stop


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([A-Za-z.]+)$", text[max(0, dot - 8) : dot])
    return bool(word) and word.group(1).lower().strip(".") in _ABBREVIATIONS


def _is_number_point(text: str, end: re.Match[str]) -> bool:
    """``3.5`` or ``v2.1``: a point between digits ends nothing."""
    at = end.start()
    return (
        end.group() == "."
        and at > 0
        and text[at - 1].isdigit()
        and at + 1 < len(text)
        and text[at + 1].isdigit()
    )


def _numbers(group: str) -> Iterator[int]:
    for part in _NUMBERS.findall(group):
        if "-" in part or "\u2013" in part:
            low, high = (int(x) for x in re.split(r"\s*[-\u2013]\s*", part))
            if low <= high and high - low < MAX_RANGE:
                yield from range(low, high + 1)
            else:
                yield 0  # counted as dropped
        else:
            yield int(part)


def _is_claim(text: str) -> bool:
    """Headings, list labels and lone connectives ("In short:") need no citation."""
    words = re.findall(r"\w+", text)
    return len(words) >= 4 and not text.endswith(":")
