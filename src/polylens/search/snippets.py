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
        positions = [
            (m.start(), m.group().lower())
            for m in _WORD.finditer(text)
            if any(m.group().lower().startswith(t[:5]) for t in terms)
        ]
        best = -1
        for i, (start, _) in enumerate(positions):
            window = {w for s, w in positions[i:] if s < start + width}
            if len(window) > best:
                best, best_start = len(window), max(0, start - width // 5)
    end = min(len(text), best_start + width)
    best_start = max(0, end - width)
    if best_start > 0:
        space = text.find(" ", best_start)
        best_start = space + 1 if 0 <= space < best_start + 20 else best_start
    piece = text[best_start:end].strip()
    return ("…" if best_start > 0 else "") + piece + ("…" if end < len(text) else "")
