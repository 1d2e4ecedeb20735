from __future__ import annotations

from polylens.encoders.windows import char_windows as windows
from polylens.ingest.text import decode_text, split_passages


def test_paragraphs_are_kept_whole_and_merged_up_to_target() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 20 for i in range(10))
    passages = split_passages(text, target_chars=300)
    assert all(len(p) <= 300 for p in passages)
    assert len(passages) < 10  # small paragraphs were merged
    assert " ".join(passages).count("Paragraph") == 10


def test_headings_start_new_passages() -> None:
    text = "# Intro\nshort intro\n\n## Usage\nrun it\n\n## Licence\npublic domain"
    passages = split_passages(text, target_chars=1000)
    assert [p.splitlines()[0] for p in passages] == ["# Intro", "## Usage", "## Licence"]


def test_long_paragraph_is_cut_at_sentence_ends() -> None:
    sentence = "The wing flutters at high speed. "
    passages = split_passages(sentence * 100, target_chars=200)
    assert len(passages) > 10
    assert all(len(p) <= 200 for p in passages)
    assert all(p.endswith(".") for p in passages)


def test_unbroken_text_is_still_bounded() -> None:
    passages = split_passages("x" * 5000, target_chars=1000)
    assert len(passages) == 5 and all(len(p) == 1000 for p in passages)


def test_empty_text_has_no_passages() -> None:
    assert split_passages(" \n\n \n", 100) == []


def test_windows_cover_the_text_in_bounded_pieces() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    pieces = windows(text, 200)
    assert all(len(p) <= 200 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_decode_handles_bom_and_legacy_encodings() -> None:
    assert decode_text("\ufeffhi".encode()) == "hi"
    assert decode_text("hé".encode("utf-16")) == "hé"
    assert decode_text("café".encode("cp1252")) == "café"
