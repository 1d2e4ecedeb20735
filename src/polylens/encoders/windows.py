"""Cutting long texts into the windows a text embedder reads whole.

A sentence-transformers model reads at most ``max_seq_length`` tokens and silently drops
the rest (all-MiniLM-L6-v2: 256 tokens, about 1,000 characters of English). A PDF page
embedded as one 2,000-character window was therefore represented by its first half only,
and questions about the foot of a page never reached it. Windows are cut by the model's
own tokens, overlapping by a quarter so a sentence on a boundary is read whole in one.
"""

from __future__ import annotations

from collections.abc import Sequence

OVERLAP = 0.25
"""Share of a window repeated at the start of the next."""


def char_windows(text: str, size: int) -> list[str]:
    """Cut text into windows of at most ``size`` characters at whitespace, no overlap
    (for models whose token limit is unknown)."""
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            space = text.rfind(" ", start + size // 2, end)
            newline = text.rfind("\n", start + size // 2, end)
            end = max(space, newline) if max(space, newline) > start else end
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    return out


def token_windows(
    text: str, offsets: Sequence[tuple[int, int]], budget: int, max_chars: int
) -> list[str]:
    """Windows of at most ``budget`` tokens (``offsets``: each token's character span in
    ``text``), overlapping by :data:`OVERLAP`, none longer than ``max_chars`` characters."""
    spans = [(a, b) for a, b in offsets if b > a]
    if not spans:
        return char_windows(text, max_chars)
    budget = max(8, budget)
    if len(spans) <= budget and len(text.strip()) <= max_chars:
        return [text.strip()]
    stride = max(1, int(budget * (1.0 - OVERLAP)))
    out: list[str] = []
    for first in range(0, len(spans), stride):
        last = min(first + budget, len(spans)) - 1
        piece = text[spans[first][0] : spans[last][1]].strip()
        out.extend(char_windows(piece, max_chars) if len(piece) > max_chars else [piece])
        if last == len(spans) - 1:
            break
    return [p for p in out if p]
