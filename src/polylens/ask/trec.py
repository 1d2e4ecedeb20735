"""An answer as a TREC RAG (Ragnarok) run record, for the track's evaluation tools.

Each answer sentence lists its citations as 0-based positions in ``references``, which
hold the cited items' ids; ``response_length`` counts the answer's words."""

from __future__ import annotations

import hashlib
from typing import Any

from polylens.ask.types import Answer


def trec_record(answer: Answer, *, run_id: str, topic_id: str | None = None) -> dict[str, Any]:
    references = [ref.id for ref in answer.references]
    position = {ref.n: i for i, ref in enumerate(answer.references)}
    sentences = [
        {"text": s.text, "citations": [position[n] for n in s.citations if n in position]}
        for s in answer.sentences
    ]
    return {
        "run_id": run_id,
        "topic_id": topic_id or _topic_id(answer.question),
        "topic": answer.question,
        "references": references,
        "response_length": sum(len(s["text"].split()) for s in sentences),
        "answer": sentences,
    }


def _topic_id(question: str) -> str:
    """A stable id for a question asked without one."""
    return hashlib.sha1(question.encode("utf-8")).hexdigest()[:12]
