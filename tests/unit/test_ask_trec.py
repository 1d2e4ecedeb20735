"""TREC RAG (Ragnarok) export: citations become 0-based positions in ``references``."""

from __future__ import annotations

from polylens.ask.trec import trec_record
from polylens.ask.types import Answer, Reference, Sentence


def _ref(n: int) -> Reference:
    return Reference(n, f"doc{n}:p{n}", f"/d/doc{n}.pdf", "page", n, None, 0.9)


def test_record_fields_and_citation_positions() -> None:
    answer = Answer(
        question="Which codes?",
        answer="Codes are tabulated [2]. Austria used ATS [1][2].",
        sentences=[Sentence("Codes are tabulated.", (2,)), Sentence("Austria used ATS.", (1, 2))],
        references=[_ref(1), _ref(2)],
    )
    record = trec_record(answer, run_id="polylens-test", topic_id="t1")
    assert record == {
        "run_id": "polylens-test",
        "topic_id": "t1",
        "topic": "Which codes?",
        "references": ["doc1:p1", "doc2:p2"],
        "response_length": 6,
        "answer": [
            {"text": "Codes are tabulated.", "citations": [1]},
            {"text": "Austria used ATS.", "citations": [0, 1]},
        ],
    }


def test_a_question_without_a_topic_id_gets_a_stable_one() -> None:
    answer = Answer(question="Which codes?", answer="")
    first = trec_record(answer, run_id="r")["topic_id"]
    assert first == trec_record(answer, run_id="r")["topic_id"] and len(first) == 12
