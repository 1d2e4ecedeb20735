"""OCR lines that lost their spaces get them back; lines read well stay as they are."""

from __future__ import annotations

import pytest

from polylens.encoders.respace import respace, respace_line

pytest.importorskip("wordninja", reason="wordninja is a dependency: pip install wordninja")


def test_a_line_without_spaces_is_split_into_words() -> None:
    line = "Decompressionspeedisunaffectedbythesephenomena."
    assert respace_line(line) == "Decompression speed is unaffected by these phenomena."


def test_punctuation_and_identifiers_inside_a_squashed_line_survive() -> None:
    line = "fc-cacheusesSOURCE_DATE_EPOCHtoensure reproducible"
    assert respace_line(line) == "fc-cache uses SOURCE_DATE_EPOCH to ensure reproducible"


@pytest.mark.parametrize(
    "line",
    [
        "The quick brown fox jumps over the lazy dog",
        "int BZ2_bzDecompressInit ( bz_stream *strm,",
        "xqzvbnmwrtplkjh",  # no words in it: left as read
        "",
    ],
)
def test_lines_with_normal_spacing_or_no_words_are_untouched(line: str) -> None:
    assert respace_line(line) == line


def test_each_line_is_judged_on_its_own() -> None:
    text = "A normal line of text\nthecrcregisterisinitialized"
    assert respace(text) == "A normal line of text\nthe crc register is initialized"
