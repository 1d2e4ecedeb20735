"""Answer metrics and gold matching of `polylens eval --ask`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polylens.ask.types import Answer, Reference, Sentence
from polylens.errors import InputError
from polylens.eval.ask_eval import (
    GoldPage,
    anls,
    answer_row,
    exact_match,
    load_cases,
    summarise,
    token_f1,
)


def test_exact_match_and_f1_ignore_case_articles_punctuation_and_markers() -> None:
    assert exact_match("The Euro [1].", "euro") == 1.0
    assert token_f1("the codes are ATS and DEM [2]", "ATS and DEM") == pytest.approx(0.75)
    assert token_f1("nothing shared", "ATS") == 0.0


def test_anls_is_zero_past_the_threshold() -> None:
    assert anls("1966", "1966") == 1.0
    assert anls("1965", "1966") == pytest.approx(0.75)
    assert anls("completely different", "1966") == 0.0


def test_gold_pages_match_by_path_tail_and_page() -> None:
    gold = GoldPage("manuals/nettle.pdf", 7)
    assert gold.matches("/home/me/docs/manuals/nettle.pdf", 7)
    assert not gold.matches("/home/me/docs/other/nettle.pdf", 7)
    assert not gold.matches("/home/me/docs/manuals/nettle.pdf", 8)
    assert GoldPage("notes.txt", None).matches("/x/notes.txt", None)


def test_question_files_in_both_layouts(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "question": "Q1?", "gold": [{"path": "m.pdf", "page": 3}], "answers": ["x"]},
        {"id": "b", "question": "Q2?", "pdf": "m.pdf", "pages": [4, 5], "answer": "y"},
        {"id": "c", "question": "Q3?"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    a, b, c = load_cases(path)
    assert a.gold == (GoldPage("m.pdf", 3),) and a.answers == ("x",)
    assert [g.page for g in b.gold] == [4, 5] and b.answers == ("y",)
    assert not c.answerable
    path.write_text('{"id": "x"}\n')
    with pytest.raises(InputError, match="q.jsonl:1"):
        load_cases(path)


def test_citation_precision_and_recall_against_gold_pages(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Q?", "pdf": "m.pdf", "pages": [2]}) + "\n")
    (case,) = load_cases(path)
    refs = [Reference(n, f"i{n}", "/d/m.pdf", "page", n, None, 0.9) for n in (1, 2, 3)]
    answer = Answer("Q?", "A [1][2].", sentences=[Sentence("A.", (1, 2))], references=refs)
    row = answer_row(case, answer)
    assert (row.cited, row.cited_gold, row.gold_cited, row.gold_in_evidence) == (2, 1, True, True)
    metrics = summarise([row])
    assert metrics["citation_precision"] == 0.5 and metrics["citation_recall"] == 1.0
