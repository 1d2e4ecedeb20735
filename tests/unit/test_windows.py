"""Text windows follow the model's tokens, overlap, and cover the text."""

from __future__ import annotations

import re

from polylens.encoders.windows import OVERLAP, char_windows, token_windows


def _offsets(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def test_a_short_text_is_one_window() -> None:
    text = "a few words only"
    assert token_windows(text, _offsets(text), budget=16, max_chars=1000) == [text]


def test_long_text_is_cut_by_tokens_with_overlap_and_fully_covered() -> None:
    words = [f"w{i}" for i in range(100)]
    text = " ".join(words)
    pieces = token_windows(text, _offsets(text), budget=20, max_chars=10_000)
    assert all(len(p.split()) <= 20 for p in pieces)
    covered = {w for p in pieces for w in p.split()}
    assert covered == set(words)
    # consecutive windows share a quarter of a window
    shared = set(pieces[0].split()) & set(pieces[1].split())
    assert len(shared) == 20 - int(20 * (1 - OVERLAP))
    assert pieces[-1].split()[-1] == "w99"


def test_the_foot_of_a_long_page_gets_its_own_window() -> None:
    text = ("filler " * 600) + "the answer sits at the foot of the page"
    pieces = token_windows(text, _offsets(text), budget=256, max_chars=2000)
    assert len(pieces) >= 3
    assert "foot of the page" in pieces[-1]
    assert all("foot" not in p for p in pieces[:-2])


def test_a_window_never_exceeds_max_chars() -> None:
    text = " ".join("x" * 30 for _ in range(50))  # 50 tokens of 30 characters
    pieces = token_windows(text, _offsets(text), budget=50, max_chars=200)
    assert all(len(p) <= 200 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_no_tokens_falls_back_to_characters() -> None:
    assert token_windows("abc def", [], budget=10, max_chars=4) == char_windows("abc def", 4)
