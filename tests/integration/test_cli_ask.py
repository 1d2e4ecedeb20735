"""`polylens ask` as a person runs it: a streamed answer with references, JSON, TREC,
no good match, and failures as one line with an exit code."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from _ask_corpus import EURO_QUESTION, LLM_ENV, NONSENSE
from _fake_llm import FakeLLM
from typer.testing import CliRunner

from polylens.cli import app


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)


def _ask(index: Path, *args: str, env: dict[str, str] | None = None):  # noqa: ANN202
    runner = CliRunner()
    return runner.invoke(
        app, ["ask", *args, "--index", str(index)], env={"COLUMNS": "100", **(env or {})}
    )


def test_streamed_answer_with_references(ask_index_dir: Path) -> None:
    reply = "The codes are listed in a table [1]. Austria used ATS [1][6]. No source here at all."
    with FakeLLM([{"text": reply}]) as fake:
        result = _ask(ask_index_dir, EURO_QUESTION, "--endpoint", fake.url, "--model", "m")
    assert result.exit_code == 0, result.output
    assert reply in result.stdout  # the model's text as it streamed, markers and all
    assert "References" in result.stdout
    assert "[1] " in result.stdout and "euro.pdf  p.2  (page, " in result.stdout
    assert "evidence: " in result.stderr
    assert "1 sentence(s) cite no evidence" in result.stderr
    assert "1 citation(s) to evidence not given were dropped" in result.stderr


def test_json_and_trec(ask_index_dir: Path) -> None:
    with FakeLLM(default={"text": "The codes are in a table [1]."}) as fake:
        env = {"POLYLENS_LLM_URL": fake.url, "POLYLENS_LLM_MODEL": "m"}
        as_json = _ask(ask_index_dir, EURO_QUESTION, "--json", env=env)
        trec = _ask(ask_index_dir, EURO_QUESTION, "--format", "trec", "--topic-id", "7", env=env)
    answer = json.loads(as_json.stdout)
    assert answer["sentences"] == [
        {"text": "The codes are in a table.", "citations": [1], "uncited": False}
    ]
    assert answer["references"][0]["n"] == 1 and answer["abstained"] is False
    record = json.loads(trec.stdout)
    assert record["topic_id"] == "7" and record["answer"][0]["citations"] == [0]
    assert "stream" not in fake.requests[0] or fake.requests[0]["stream"] is False


def test_no_good_match(ask_index_dir: Path) -> None:
    with FakeLLM() as fake:
        result = _ask(ask_index_dir, NONSENSE, "--endpoint", fake.url, "--model", "m")
    assert result.exit_code == 0
    assert "No good match — closest results:" in result.stdout
    assert "No model was asked" in result.stdout
    assert fake.requests == []


def test_without_an_endpoint_it_says_how_to_set_one(ask_index_dir: Path) -> None:
    result = _ask(ask_index_dir, EURO_QUESTION)
    assert result.exit_code == 2
    assert "POLYLENS_LLM_URL" in result.stderr and "Traceback" not in result.output


def test_failures_are_one_line_with_their_exit_code(ask_index_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = _ask(
        ask_index_dir, EURO_QUESTION, "--endpoint", f"http://127.0.0.1:{closed}/v1", "--model", "m"
    )
    assert down.exit_code == 5 and "cannot be reached" in down.stderr
    secret = "sk-test-NEVER-PRINTED-42"
    body = {"error": {"message": f"Incorrect API key provided: {secret}"}}
    with FakeLLM([{"status": 401, "body": body}]) as fake:
        refused = _ask(
            ask_index_dir,
            EURO_QUESTION,
            "--endpoint",
            fake.url,
            "--model",
            "m",
            env={"POLYLENS_LLM_API_KEY": secret},
        )
    assert refused.exit_code == 5 and "HTTP 401" in refused.stderr
    assert secret not in refused.output and "Traceback" not in refused.output


def test_references_tell_passages_of_one_file_apart() -> None:
    from types import SimpleNamespace

    from polylens.cli.ask_cmd import _where

    ref = dict(path="/notes/about.md", page=None, kind="text", confidence=0.5)
    first = _where(SimpleNamespace(**ref, chunk=0))
    second = _where(SimpleNamespace(**ref, chunk=3))
    assert "passage 1" in first and "passage 4" in second and first != second
    page = _where(SimpleNamespace(**{**ref, "kind": "page", "page": 2}, chunk=None))
    assert "p.2" in page and "passage" not in page
