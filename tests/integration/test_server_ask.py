"""POST /api/ask through FastAPI's test client: JSON answers, the SSE stream, errors,
and the endpoint staying the owner's choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is needed: pip install 'polylens[server]'")
pytest.importorskip("httpx", reason="the test client needs httpx: pip install httpx")

from _ask_corpus import EURO_QUESTION, LLM_ENV, NONSENSE  # noqa: E402
from _fake_llm import FakeLLM  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from polylens.server.app import create_app  # noqa: E402


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLLM:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    with FakeLLM() as server:
        monkeypatch.setenv("POLYLENS_LLM_URL", server.url)
        monkeypatch.setenv("POLYLENS_LLM_MODEL", "fake-vlm")
        yield server


@pytest.fixture
def client(ask_index_dir: Path, fake: FakeLLM) -> TestClient:
    with TestClient(create_app(ask_index_dir, warm=False)) as c:
        yield c


def _events(body: str) -> list[tuple[str, dict]]:
    events = []
    for frame in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_json_answer(client: TestClient, fake: FakeLLM) -> None:
    fake.push({"text": "The codes are in a table [1]. Austria used ATS [1][8]."})
    response = client.post("/api/ask", json={"question": EURO_QUESTION})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) >= {
        "question", "answer", "sentences", "references", "abstained", "dropped_citations", "usage",
    }  # fmt: skip
    assert answer["sentences"][0]["citations"] == [1] and answer["dropped_citations"] == 1
    assert answer["references"][0]["path"].endswith("euro.pdf")


def test_event_stream(client: TestClient, fake: FakeLLM) -> None:
    text = "The codes are in a table [1]. They are three letters long [1]."
    fake.push({"text": text, "chunks": 9})
    with client.stream(
        "POST",
        "/api/ask",
        json={"question": EURO_QUESTION},
        headers={"accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.read().decode())
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "evidence" and kinds[-1] == "done"
    assert kinds.count("delta") == 9 and kinds.count("citations") == 2
    assert "".join(d["text"] for k, d in events if k == "delta") == text
    assert events[-1][1]["sentences"][1]["citations"] == [1]


def test_no_good_match_streams_the_closest_items_without_a_model_call(
    client: TestClient, fake: FakeLLM
) -> None:
    response = client.post("/api/ask", json={"question": NONSENSE, "stream": True})
    kinds = [kind for kind, _ in _events(response.text)]
    assert kinds == ["evidence", "done"]
    assert _events(response.text)[-1][1]["abstain_reason"] == "no_good_match"
    assert fake.requests == []


def test_a_failure_mid_stream_is_an_error_event(client: TestClient, fake: FakeLLM) -> None:
    fake.push({"status": 502, "body": {"error": {"message": "upstream overloaded"}}})
    response = client.post("/api/ask", json={"question": EURO_QUESTION, "stream": True})
    kind, data = _events(response.text)[-1]
    assert kind == "error" and data["status"] == 502
    assert "upstream overloaded" in data["detail"]


def test_a_failure_before_streaming_is_an_http_status(client: TestClient, fake: FakeLLM) -> None:
    fake.push({"status": 500})
    response = client.post("/api/ask", json={"question": EURO_QUESTION})
    assert response.status_code == 502
    assert response.json()["error"] == "EndpointRejectedError"


@pytest.mark.parametrize(
    "body",
    [
        {"question": EURO_QUESTION, "endpoint": "http://169.254.169.254/v1"},
        {"question": EURO_QUESTION, "model": "another"},
        {"question": "   "},
        {"question": EURO_QUESTION, "max_evidence": 0},
        {"question": EURO_QUESTION, "rounds": 99},
        {"question": EURO_QUESTION, "max_evidence": True},
        {"question": EURO_QUESTION, "rounds": "2"},
        {"question": 7},
    ],
    ids=["endpoint", "model", "blank", "max-evidence", "rounds", "bool", "string", "number"],
)
def test_bad_requests_are_refused_before_any_model_call(
    client: TestClient, fake: FakeLLM, body: dict
) -> None:
    response = client.post("/api/ask", json=body)
    assert response.status_code == 422 and response.json()["detail"]
    assert fake.requests == []


def test_no_endpoint_configured_is_503_with_how_to(
    ask_index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    with TestClient(create_app(ask_index_dir, warm=False)) as c:
        response = c.post("/api/ask", json={"question": EURO_QUESTION})
    assert response.status_code == 503
    assert "POLYLENS_LLM_URL" in response.json()["detail"]


def test_ask_needs_the_token_when_one_is_set(ask_index_dir: Path, fake: FakeLLM) -> None:
    with TestClient(create_app(ask_index_dir, token="s3cret-token", warm=False)) as c:
        assert c.post("/api/ask", json={"question": EURO_QUESTION}).status_code == 401
        fake.push({"text": "Codes [1]."})
        ok = c.post(
            "/api/ask",
            json={"question": EURO_QUESTION},
            headers={"authorization": "Bearer s3cret-token"},
        )
    assert ok.status_code == 200
    assert len(fake.requests) == 1
