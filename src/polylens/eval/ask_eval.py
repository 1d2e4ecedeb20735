"""``polylens eval QUESTIONS.jsonl --ask``: how well ``ask`` finds and uses evidence.

A question file is JSONL, one question a line::

    {"id": "q1", "question": "...", "gold": [{"path": "manual.pdf", "page": 7}],
     "answers": ["a short answer", "another accepted form"]}

``gold`` may also be given as ``"pdf"`` + ``"pages"`` (the layout of bench/data/documents);
a question with no gold pages, or ``"answerable": false``, should be abstained on.
Gold paths match an item's path by their end (``manual.pdf`` matches
``/docs/manual.pdf``). Without a model this measures the evidence ``ask`` would send;
with one, the answers (exact match, token F1, ANLS), citations against the gold pages,
and abstention. Answers are recorded as JSONL so they can be scored again offline.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from polylens.ask.types import Answer, Reference
from polylens.errors import InputError, MissingExtraError

ANLS_THRESHOLD = 0.5
"""ANLS scores an answer 0 once its normalised edit distance reaches this (DocVQA)."""


@dataclass(frozen=True)
class GoldPage:
    path: str
    page: int | None

    def matches(self, path: str, page: int | None) -> bool:
        tail = PurePosixPath(self.path.replace("\\", "/")).parts
        parts = PurePosixPath(path.replace("\\", "/")).parts
        return parts[-len(tail) :] == tail and (self.page is None or self.page == page)


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    gold: tuple[GoldPage, ...]
    answers: tuple[str, ...] = ()
    answerable: bool = True


@dataclass
class Row:
    """One question's outcome; answer fields stay None when no model was asked."""

    id: str
    answerable: bool
    evidence: int
    gold_in_evidence: bool
    abstained: bool
    exact: float | None = None
    f1: float | None = None
    anls: float | None = None
    cited: int | None = None
    cited_gold: int | None = None
    gold_cited: bool | None = None


@dataclass
class AskReport:
    questions: int
    answerable: int
    unanswerable: int
    metrics: dict[str, float | None]
    rows: list[Row] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "answerable": self.answerable,
            "unanswerable": self.unanswerable,
            "metrics": self.metrics,
            "rows": [asdict(r) for r in self.rows],
        }


def load_cases(path: Path) -> list[Case]:
    cases: list[Case] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the question file ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(_case(row, number))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{number}: not a question line ({exc})") from exc
    if not cases:
        raise InputError(f"{path}: no questions")
    return cases


def _case(row: dict[str, Any], number: int) -> Case:
    question = str(row["question"]).strip()
    if not question:
        raise ValueError("empty question")
    gold: list[GoldPage] = []
    for item in row.get("gold") or ():
        gold.append(GoldPage(str(item["path"]), _page(item.get("page"))))
    if row.get("pdf"):
        gold += [GoldPage(str(row["pdf"]), _page(p)) for p in row.get("pages") or ()]
    answers = row.get("answers") or ([row["answer"]] if row.get("answer") else [])
    answerable = bool(row.get("answerable", bool(gold)))
    return Case(
        str(row.get("id", number)), question, tuple(gold), tuple(map(str, answers)), answerable
    )


def _page(value: Any) -> int | None:
    return None if value is None else int(value)


def evidence_row(case: Case, references: Sequence[Any], abstained: bool) -> Row:
    """``references``: what was (or would be) sent, anything with ``path`` and ``page``."""
    hit = any(g.matches(r.path, r.page) for r in references for g in case.gold)
    return Row(case.id, case.answerable, len(references), hit and not abstained, abstained)


def answer_row(case: Case, answer: Answer) -> Row:
    sent = [] if answer.abstain_reason == "no_good_match" else answer.references
    row = evidence_row(case, sent, answer.abstain_reason == "no_good_match")
    row.abstained = answer.abstained
    if case.answers and not answer.abstained:
        row.exact = max(exact_match(answer.answer, g) for g in case.answers)
        row.f1 = max(token_f1(answer.answer, g) for g in case.answers)
        row.anls = max(anls(answer.answer, g) for g in case.answers)
    by_n = {r.n: r for r in answer.references}
    cited = [by_n[n] for n in answer.cited if n in by_n]
    row.cited = len(cited)
    row.cited_gold = sum(any(g.matches(r.path, r.page) for g in case.gold) for r in cited)
    row.gold_cited = bool(row.cited_gold)
    return row


def summarise(rows: list[Row]) -> dict[str, float | None]:
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    metrics: dict[str, float | None] = {
        "evidence_recall": _mean(r.gold_in_evidence for r in answerable),
        "evidence_items": _mean(r.evidence for r in rows if not r.abstained or r.evidence),
        "abstain_answerable": _mean(r.abstained for r in answerable),
        "abstain_unanswerable": _mean(r.abstained for r in unanswerable),
    }
    if any(r.cited is not None for r in rows):
        scored = [r for r in answerable if r.exact is not None]
        cited = [r for r in answerable if r.cited]
        metrics |= {
            "exact_match": _mean(r.exact for r in scored),
            "f1": _mean(r.f1 for r in scored),
            "anls": _mean(r.anls for r in scored),
            "citation_precision": _ratio(
                sum(r.cited_gold or 0 for r in cited), sum(r.cited or 0 for r in cited)
            ),
            "citation_recall": _mean(bool(r.gold_cited) for r in answerable),
        }
    return metrics


def report(rows: list[Row]) -> AskReport:
    answerable = sum(r.answerable for r in rows)
    return AskReport(len(rows), answerable, len(rows) - answerable, summarise(rows), rows)


def evaluate(
    cases: list[Case],
    run: Callable[[Case], Row],
    on_row: Callable[[Row], None] | None = None,
) -> AskReport:
    rows = []
    for case in cases:
        row = run(case)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return report(rows)


def read_recorded(path: Path) -> dict[str, Answer]:
    """Answers recorded by an earlier run (``--record``), by question id."""
    from polylens.ask.types import Round, Sentence

    recorded: dict[str, Answer] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            data = row["answer"]
            answer = Answer(
                question=data["question"],
                answer=data["answer"],
                sentences=[
                    Sentence(s["text"], tuple(s["citations"]), s.get("uncited", False))
                    for s in data["sentences"]
                ],
                references=[Reference(**r) for r in data["references"]],
                abstained=data["abstained"],
                abstain_reason=data.get("abstain_reason"),
                dropped_citations=data.get("dropped_citations", 0),
                usage=data.get("usage", {}),
                rounds=[Round(r["query"], tuple(r["added"])) for r in data.get("rounds", [])],
                model=data.get("model"),
                fallbacks=data.get("fallbacks", []),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a recorded answer ({exc})") from exc
        recorded[str(row["id"])] = answer
    return recorded


def record_line(case: Case, answer: Answer) -> str:
    return json.dumps({"id": case.id, "answer": answer.to_dict()}, ensure_ascii=False)


# -- answer metrics (SQuAD's normalisation; ANLS as in DocVQA) ---------------------------
def normalise(text: str) -> str:
    text = re.sub(r"\[\s*\d[\d\s,;\u2013-]*\]", " ", text.lower())  # citation markers
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalise(prediction) == normalise(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalise(prediction).split(), normalise(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    remaining = {t: expected.count(t) for t in set(expected)}
    overlap = 0
    for token in predicted:
        if remaining.get(token, 0) > 0:
            remaining[token] -= 1
            overlap += 1
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def anls(prediction: str, gold: str) -> float:
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError as exc:
        raise MissingExtraError("ANLS needs rapidfuzz: pip install 'polylens[eval]'") from exc
    a, b = " ".join(prediction.lower().split()), " ".join(gold.lower().split())
    distance = Levenshtein.normalized_distance(a, b)
    return 0.0 if distance >= ANLS_THRESHOLD else 1.0 - distance


def _mean(values: Iterable[Any]) -> float | None:
    items = [float(v) for v in values if v is not None]
    return round(sum(items) / len(items), 4) if items else None


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None
