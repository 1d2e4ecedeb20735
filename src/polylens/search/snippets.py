"""Short excerpts of an item's text around the words of the query."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be by for from has in is it of on or that the this to was what which "
    "with how why when where who do does".split()
)


def snippet(text: str, query: str | None, *, width: int = 220) -> str | None:
    """The ``width``-character window of ``text`` holding the most query words."""
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) <= width:
        return text
    terms = {w.lower() for w in _WORD.findall(query or "") if w.lower() not in _STOP}
    best_start = 0
    if terms:
        # A word matches a query term when it shares the term's first five letters
        # (a cheap stand-in for stemming): at most five set lookups per word.
        prefixes = {t[:5] for t in terms}
        lengths = sorted({len(p) for p in prefixes})
        positions = []
        for match in _WORD.finditer(text):
            word = match.group().lower()
            for length in lengths:
                if word[:length] in prefixes:
                    positions.append((match.start(), word[:length]))
                    break
        # Slide a window over the matches; keep the one with the most distinct terms.
        counts: dict[str, int] = {}
        best, right = -1, 0
        for left, (start, _) in enumerate(positions):
            while right < len(positions) and positions[right][0] < start + width:
                key = positions[right][1]
                counts[key] = counts.get(key, 0) + 1
                right += 1
            if len(counts) > best:
                best, best_start = len(counts), max(0, start - width // 5)
            key = positions[left][1]
            counts[key] -= 1
            if not counts[key]:
                del counts[key]
    end = min(len(text), best_start + width)
    best_start = max(0, end - width)
    if best_start > 0:
        space = text.find(" ", best_start)
        best_start = space + 1 if 0 <= space < best_start + 20 else best_start
    piece = text[best_start:end].strip()
    return ("…" if best_start > 0 else "") + piece + ("…" if end < len(text) else "")
