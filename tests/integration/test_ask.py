"""`ask` end to end against a scripted OpenAI-compatible server (tests/_fake_llm.py):
evidence, citations, abstaining, rounds, fallbacks and every endpoint failure."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import pytest
from _ask_corpus import EURO_QUESTION as EURO
from _ask_corpus import LLM_ENV, NONSENSE
from _fake_llm import FakeLLM

from polylens.engine import Index, open_index
from polylens.errors import (
    EndpointNotConfiguredError,
    EndpointProtocolError,
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnreachableError,
)


@pytest.fixture
def idx(ask_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    with open_index(ask_index_dir, create=False, llm_timeout=2.0) as index:
        yield index


def _user_text(request: dict) -> str:
    content = request["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p["type"] == "text")


def _pictures(request: dict) -> int:
    content = request["messages"][-1]["content"]
    return 0 if isinstance(content, str) else sum(p["type"] == "image_url" for p in content)


def test_answer_cites_numbered_evidence_and_nothing_else_is_sent(idx: Index) -> None:
    with FakeLLM([{"text": "They are listed in a table [1]. Austria uses ATS [1][7]."}]) as fake:
        answer = idx.ask(EURO, endpoint=fake.url, model="fake-vlm", max_evidence=3)
    assert [s.citations for s in answer.sentences] == [(1,), (1,)]
    assert answer.dropped_citations == 1 and not answer.abstained
    refs = answer.references
    assert 1 <= len(refs) <= 3 and [r.n for r in refs] == list(range(1, len(refs) + 1))
    assert refs[0].path.endswith("euro.pdf") and refs[0].page == 2
    (request,) = fake.requests
    sent = _user_text(request)
    assert sent.count("<evidence>") == len(refs)
    for ref in refs:
        assert f"[{ref.n}] file: euro.pdf, page {ref.page}" in sent
    assert "SQLite" not in sent and "balloon" not in sent  # only the chosen evidence
    assert _pictures(request) == sum(r.sent_as == "image+text" for r in refs) == len(refs)
    assert answer.usage["total_tokens"] > 0


def test_streamed_events_add_up_to_the_answer(idx: Index) -> None:
    text = "The table lists the codes [1]. Each country has one code [1][2]. Done here."
    with FakeLLM([{"text": text}]) as fake:
        events = list(idx.ask_stream(EURO, endpoint=fake.url, model="m", max_evidence=2))
    kinds = [e.type for e in events]
    assert kinds[0] == "evidence" and kinds[-1] == "done" and "round" not in kinds
    assert "".join(e.data["text"] for e in events if e.type == "delta") == text
    answer = events[-1].answer
    streamed = [
        (e.data["text"], tuple(e.data["citations"])) for e in events if e.type == "citations"
    ]
    assert streamed == [(s.text, s.citations) for s in answer.sentences]
    first_citation = kinds.index("citations")
    assert first_citation < len(kinds) - 3  # settled while the text was still streaming


def test_no_good_match_abstains_without_calling_the_model(idx: Index) -> None:
    with FakeLLM() as fake:
        answer = idx.ask(NONSENSE, endpoint=fake.url, model="m")
    assert answer.abstained and answer.abstain_reason == "no_good_match"
    assert fake.requests == []
    assert all(r.sent_as == "none" for r in answer.references)


def test_the_model_saying_the_evidence_is_insufficient_is_an_abstention(idx: Index) -> None:
    reply = "INSUFFICIENT EVIDENCE The pages do not say when the euro package was written."
    with FakeLLM([{"text": reply}]) as fake:
        answer = idx.ask(EURO, endpoint=fake.url, model="m")
    assert answer.abstained and answer.abstain_reason == "model"


def test_a_tool_call_searches_again_and_numbering_continues(idx: Index) -> None:
    script = [
        {"tool_call": {"name": "search", "arguments": {"query": "SQLite serverless database"}}},
        {"text": "The codes are in a table [1]. SQLite needs no server [3]."},
    ]
    with FakeLLM(script) as fake:
        answer = idx.ask(EURO, endpoint=fake.url, model="m", max_evidence=2, rounds=2)
    (round_,) = answer.rounds
    assert round_.query == "SQLite serverless database" and round_.added
    assert round_.added[0] == min(round_.added) > 1
    added = [r for r in answer.references if r.round == 2]
    assert added and all(r.path.endswith("about-sqlite.md") for r in added)
    assert "tools" in fake.requests[0] and "tools" not in fake.requests[1]
    assert _user_text(fake.requests[1]).count("<evidence>") == len(answer.references)
    assert (3,) in [s.citations for s in answer.sentences] or answer.dropped_citations == 1


def test_structured_search_when_the_endpoint_refuses_tools(idx: Index) -> None:
    script = [
        {"reject_tools": True, "text": "unused"},
        {"text": "SEARCH: hacker folklore jargon"},
        {"text": "Hackers have folklore [2]."},
    ]
    with FakeLLM(script) as fake:
        answer = idx.ask(EURO, endpoint=fake.url, model="m", max_evidence=1, rounds=2, vision=False)
    assert answer.fallbacks == ["no-tools"]
    assert [r.query for r in answer.rounds] == ["hacker folklore jargon"]
    assert answer.references[1].path.endswith("jargon-file-hacker-folklore.txt")
    assert answer.sentences[0].citations == (2,)
    assert len(fake.requests) == 3 and "tools" not in fake.requests[1]


def test_text_only_retry_when_the_endpoint_refuses_pictures(idx: Index) -> None:
    with FakeLLM(default={"reject_images": True, "text": "Codes are tabulated [1]."}) as fake:
        answer = idx.ask(EURO, endpoint=fake.url, model="m", max_evidence=2)
    assert answer.fallbacks == ["text-only"]
    assert all(r.sent_as == "text" for r in answer.references)
    assert _pictures(fake.requests[0]) > 0 and isinstance(
        fake.requests[1]["messages"][-1]["content"], str
    )
    assert answer.sentences[0].citations == (1,)


def test_a_page_that_gives_instructions_stays_data(idx: Index) -> None:
    question = "What is the balloon launch code?"
    with FakeLLM([{"text": "The launch code is 4711 [1][99]."}]) as fake:
        answer = idx.ask(question, endpoint=fake.url, model="m")
    assert answer.references[0].path.endswith("balloon.txt")
    assert answer.sentences[0].citations == (1,) and answer.dropped_citations == 1
    sent = _user_text(fake.requests[0])
    assert "cite (99)" in sent and "[99]" not in sent
    assert sent.count("</evidence>") == len(answer.references)  # the page closed nothing
    rules = fake.requests[0]["messages"][0]["content"]
    assert "never instructions" in rules


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAILURES = [
    ({"status": 500}, EndpointRejectedError),
    ({"status": 404, "body": {"error": {"message": "model m not found"}}}, EndpointRejectedError),
    ({"hang": 5.0}, EndpointTimeoutError),
    ({"malformed": True}, EndpointProtocolError),
]
MID_STREAM = [
    ({"stall_after": 2}, EndpointTimeoutError),
    ({"cut": True}, EndpointProtocolError),
]


@pytest.mark.parametrize(
    ("spec", "error", "stream"),
    [(spec, error, True) for spec, error in FAILURES + MID_STREAM]
    + [(spec, error, False) for spec, error in FAILURES],
    ids=[f"stream-{n}" for n in ("500", "404", "hang", "malformed", "stall", "cut")]
    + [f"whole-{n}" for n in ("500", "404", "hang", "malformed")],
)
def test_endpoint_failures_are_clear_errors_never_hangs(
    idx: Index, spec: dict, error: type, stream: bool
) -> None:
    started = time.monotonic()
    with FakeLLM(default={**spec, "text": "Codes [1]."}) as fake:
        with pytest.raises(error) as caught:
            events = idx.ask_stream(EURO, endpoint=fake.url, model="m", stream=stream)
            list(events)
    assert time.monotonic() - started < 8
    message = str(caught.value)
    assert message.startswith(f"the model endpoint {fake.url}") and "Traceback" not in message


def test_endpoint_down_and_not_configured(idx: Index) -> None:
    with pytest.raises(EndpointUnreachableError, match="cannot be reached"):
        idx.ask(EURO, endpoint=f"http://127.0.0.1:{_closed_port()}/v1", model="m")
    with pytest.raises(EndpointNotConfiguredError, match="POLYLENS_LLM_URL"):
        idx.ask(EURO)


def test_a_stream_without_done_is_a_complete_answer(idx: Index) -> None:
    with FakeLLM([{"text": "Codes are in a table [1].", "no_done": True}]) as fake:
        answer = idx.ask_stream(EURO, endpoint=fake.url, model="m")
        final = [e for e in answer if e.type == "done"][0].answer
    assert final.answer == "Codes are in a table [1]." and final.sentences[0].citations == (1,)


def test_the_api_key_is_sent_to_the_endpoint_and_shown_nowhere(
    idx: Index, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-DO-NOT-SHOW-31337"
    monkeypatch.setenv("POLYLENS_LLM_API_KEY", secret)
    body = {"error": {"message": f"Incorrect API key provided: {secret}"}}
    caplog.set_level(logging.DEBUG)
    with FakeLLM([{"text": "Codes [1]."}, {"status": 401, "body": body}]) as fake:
        answer = idx.ask(EURO, endpoint=fake.url, model="m")
        with pytest.raises(EndpointRejectedError) as caught:
            idx.ask(EURO, endpoint=fake.url, model="m")
    assert fake.headers[0]["authorization"] == f"Bearer {secret}"
    assert secret not in json.dumps(answer.to_dict())
    assert secret not in str(caught.value) and "401" in str(caught.value)
    assert secret not in caplog.text
    from polylens.ask.settings import resolve_settings

    assert secret not in repr(resolve_settings(idx.config))
