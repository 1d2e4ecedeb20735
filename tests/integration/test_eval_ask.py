"""`polylens eval QUESTIONS.jsonl --ask`: evidence recall without a model; answers,
citations and abstention with one; recorded answers scored again offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ask_corpus import EURO_QUESTION, LLM_ENV, NONSENSE
from _fake_llm import FakeLLM
from typer.testing import CliRunner

from polylens.cli import app


@pytest.fixture
def questions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    rows = [
        {
            "id": "euro",
            "question": EURO_QUESTION,
            "pdf": "euro.pdf",
            "pages": [2],
            "answers": ["ATS"],
        },
        {
            "id": "balloon",
            "question": "What is the balloon launch code?",
            "gold": [{"path": "text/balloon.txt", "page": None}],
            "answers": ["4711"],
        },
        {"id": "nonsense", "question": NONSENSE},
    ]
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _eval(index: Path, questions: Path, *args: str):  # noqa: ANN202
    return CliRunner().invoke(
        app, ["eval", str(questions), "--ask", "--index", str(index), "--json", *args]
    )


def test_evidence_only_without_a_model(ask_index_dir: Path, questions: Path) -> None:
    result = _eval(ask_index_dir, questions)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"].startswith("evidence only")
    assert report["metrics"]["evidence_recall"] == 1.0
    assert report["metrics"]["abstain_unanswerable"] == 1.0
    assert report["metrics"]["abstain_answerable"] == 0.0
    assert "f1" not in report["metrics"]


def test_answers_are_scored_recorded_and_scored_again(
    ask_index_dir: Path, questions: Path, tmp_path: Path
) -> None:
    record = tmp_path / "answers.jsonl"
    script = [{"text": "ATS [1]."}, {"text": "The code is 4711 [1][3]."}]
    with FakeLLM(script) as fake:
        live = _eval(
            ask_index_dir,
            questions,
            "--endpoint",
            fake.url,
            "--model",
            "m",
            "--record",
            str(record),
        )
    assert live.exit_code == 0, live.output
    metrics = json.loads(live.stdout)["metrics"]
    assert metrics["exact_match"] == 0.5 and metrics["citation_recall"] == 1.0
    assert metrics["abstain_unanswerable"] == 1.0 and len(fake.requests) == 2
    assert len(record.read_text().splitlines()) == 3
    again = _eval(ask_index_dir, questions, "--answers", str(record))
    assert json.loads(again.stdout)["metrics"] == metrics
