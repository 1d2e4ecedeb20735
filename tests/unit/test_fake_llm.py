"""The scripted fake LLM server, seen through the openai SDK and raw httpx.

How the openai SDK surfaces each behaviour (measured with openai 3.57.0, which talks through
its own httpx2; 1.109.1 and 2.54.0 checked too, with max_retries=0 everywhere):

  behaviour            non-streaming create()            stream=True
  text / no_done       ChatCompletion                    chunks, ends normally (no_done too)
  status 400           openai.BadRequestError            same, raised by create() itself
  status 413           openai.APIStatusError (the base   same
                       class; .status_code == 413)
  status 429           openai.RateLimitError             same
  status 500, 502      openai.InternalServerError        same
  reject_images/tools  openai.BadRequestError, .body["message"] says what is unsupported
  hang (timeout 0.5)   openai.APITimeoutError            same, raised by create() itself
  stall_after          (not streamed: full reply)        3.x: openai.APITimeoutError
                                                         1.x/2.x: raw httpx.ReadTimeout
  cut                  (not streamed: full reply)        3.x: openai.APIConnectionError
                                                           (__cause__ httpx2 RemoteProtocolError)
                                                         1.x/2.x: raw httpx.RemoteProtocolError
  malformed            json.JSONDecodeError (raw, not    json.JSONDecodeError (raw), after
                       an openai.OpenAIError)            the chunks before it were yielded
stall_after, cut and malformed raise while iterating, after the earlier chunks were yielded;
in 1.x/2.x none of the three is an openai.OpenAIError.

APIStatusError.body is the "error" object when the body is OpenAI-style JSON, else the raw
text; .message is "Error code: N - <error.message>" in 3.x (1.x/2.x put the whole dict there).
The SDK retries 408/409/429/5xx, timeouts and connection errors unless max_retries=0, and each
retry pops the next scripted reply.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _fake_llm import FakeLLM

openai = pytest.importorskip("openai", reason="pip install 'openai>=1.40'")

# Errors raised mid-stream: 3.x wraps them, 1.x and 2.x let httpx's own through.
_V3 = int(openai.__version__.split(".")[0]) >= 3
STREAM_TIMEOUT = openai.APITimeoutError if _V3 else httpx.ReadTimeout
STREAM_CUT = openai.APIConnectionError if _V3 else httpx.RemoteProtocolError

USER = [{"role": "user", "content": "what is in [12]?"}]
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOL = {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}


_clients: dict[tuple[str, float], Any] = {}  # a test's SDK clients (each costs ~30 ms)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    for c in _clients.values():
        c.close()
    _clients.clear()
    assert set(threading.enumerate()) <= before


def client(fake: FakeLLM, timeout: float = 2.0) -> Any:
    key = (fake.url, timeout)
    if key not in _clients:
        _clients[key] = openai.OpenAI(
            base_url=fake.url, api_key="sk-test", max_retries=0, timeout=timeout
        )
    return _clients[key]


def ask(fake: FakeLLM, messages: list[dict] = USER, timeout: float = 2.0, **kw: Any) -> Any:
    return client(fake, timeout).chat.completions.create(model="m", messages=messages, **kw)


def ask_stream(fake: FakeLLM, got: list[Any], timeout: float = 2.0, **kw: Any) -> list[Any]:
    """Streams into ``got`` so a test still sees the chunks yielded before an error."""
    create = client(fake, timeout).chat.completions.create
    with create(model="m", messages=USER, stream=True, **kw) as stream:
        for chunk in stream:
            got.append(chunk)
    return got


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_sse(fake: FakeLLM, timeout: float = 2.0, **kw: Any) -> tuple[httpx.Response, list[str]]:
    body = {"model": "m", "messages": USER, "stream": True, **kw}
    with httpx.stream("POST", f"{fake.url}/chat/completions", json=body, timeout=timeout) as r:
        return r, [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


def test_models_routes_and_recorded_requests() -> None:
    with FakeLLM([{"text": "first"}], model="vlm-x") as fake:
        assert [m.id for m in client(fake).models.list().data] == ["vlm-x"]
        r = httpx.get(f"{fake.url}/nope")
        assert r.status_code == 404 and "error" in r.json()
        assert httpx.post(f"{fake.url}/completions", json={}).status_code == 404
        assert ask(fake).choices[0].message.content == "first"
        fake.push({"text": "pushed"})
        assert ask(fake).choices[0].message.content == "pushed"
        reply = ask(fake)  # the queue is empty: the default
        assert reply.choices[0].message.content == "ok"
        assert reply.choices[0].finish_reason == "stop" and reply.usage.total_tokens > 0
        assert [r["messages"] for r in fake.requests] == [USER] * 3
        assert fake.headers[0]["authorization"] == "Bearer sk-test"


def test_stream_splits_every_7_characters_and_reports_usage() -> None:
    text = "The capital [12] of France [3]."
    with FakeLLM([{"text": text}]) as fake:
        chunks = ask_stream(fake, [], stream_options={"include_usage": True})
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert "".join(pieces) == text and max(map(len, pieces)) == 7
    assert not any("[12]" in p or "[3]" in p for p in pieces)  # citations split across chunks
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())


def test_chunks_int_and_list_over_raw_httpx() -> None:
    with FakeLLM(
        [{"text": "abcdefghij", "chunks": 3}, {"text": "ab[1]c", "chunks": ["ab[", "1]c"]}]
    ) as fake:
        r, data = raw_sse(fake)
        assert r.headers["content-type"] == "text/event-stream" and data[-1] == "[DONE]"
        deltas = [json.loads(d)["choices"][0]["delta"].get("content") for d in data[1:-2]]
        assert deltas == ["abcd", "efgh", "ij"]
        assert "usage" not in json.loads(data[-2])  # include_usage was not asked for
        _, data = raw_sse(fake)
        assert [json.loads(d)["choices"][0]["delta"]["content"] for d in data[1:-2]] == [
            "ab[",
            "1]c",
        ]


def test_tool_call_whole_and_streamed() -> None:
    call = {"name": "search", "arguments": {"query": "capital of France", "k": 5}}
    with FakeLLM([{"tool_call": call}, {"tool_call": call}]) as fake:
        reply = ask(fake, tools=[TOOL])
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (tc,) = choice.message.tool_calls
        assert (tc.id, tc.type, tc.function.name) == ("call_1", "function", "search")
        assert json.loads(tc.function.arguments) == call["arguments"]
        chunks = ask_stream(fake, [], tools=[TOOL])
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    head, rest = calls[0][0], [c[0] for c in calls[1:]]
    assert (head.index, head.id, head.type, head.function.name) == (
        0,
        "call_2",
        "function",
        "search",
    )
    assert len(rest) > 2 and all(t.id is None and t.function.name is None for t in rest)
    assert json.loads("".join(t.function.arguments for t in rest)) == call["arguments"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (413, openai.APIStatusError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_status_errors(status: int, error: type[Exception], stream: bool) -> None:
    with FakeLLM([{"status": status}]) as fake:
        with pytest.raises(error) as info:
            ask(fake, stream=stream)
    assert type(info.value) is error and info.value.status_code == status
    assert info.value.body["type"] in ("invalid_request_error", "server_error")


def test_status_with_a_text_body() -> None:
    with FakeLLM([{"status": 502, "body": "<html>bad gateway</html>"}]) as fake:
        with pytest.raises(openai.InternalServerError) as info:
            ask(fake)
        assert info.value.body == "<html>bad gateway</html>"


def test_reject_images_then_text_only_retry() -> None:
    with_image = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, IMAGE]}]
    with FakeLLM(default={"reject_images": True, "text": "text answer"}) as fake:
        with pytest.raises(openai.BadRequestError, match="image input is not supported"):
            ask(fake, with_image)
        assert ask(fake).choices[0].message.content == "text answer"
        assert len(fake.requests) == 2


def test_reject_tools_then_retry_without() -> None:
    with FakeLLM(default={"reject_tools": True, "text": "plain"}) as fake:
        with pytest.raises(openai.BadRequestError) as info:
            ask(fake, tools=[TOOL])
        assert info.value.body["message"] == "tools are not supported"
        assert text_of(ask_stream(fake, [])) == "plain"


@pytest.mark.parametrize("stream", [False, True])
def test_hang_times_out_the_client(stream: bool) -> None:
    with FakeLLM([{"hang": 30}] * 2) as fake:
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            ask(fake, timeout=0.5, stream=stream)
        assert time.monotonic() - start < 1.5
        assert len(fake.requests) == 1  # recorded before the reply
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{fake.url}/chat/completions", json={"messages": USER}, timeout=0.1)


def test_hang_shorter_than_the_timeout_replies() -> None:
    with FakeLLM([{"hang": 0.05, "text": "late"}]) as fake:
        assert ask(fake).choices[0].message.content == "late"


def test_stall_after_times_out_mid_stream() -> None:
    with FakeLLM([{"text": "a" * 40, "stall_after": 2}] * 2) as fake:
        got: list[Any] = []
        with pytest.raises(STREAM_TIMEOUT):
            ask_stream(fake, got, timeout=0.2)
        assert text_of(got) == "a" * 14
        with pytest.raises(httpx.ReadTimeout):
            raw_sse(fake, timeout=0.1)


def test_malformed_stream_and_body() -> None:
    with FakeLLM([{"text": "a" * 20, "malformed": True}] * 3) as fake:
        got: list[Any] = []
        with pytest.raises(json.JSONDecodeError):
            ask_stream(fake, got)
        assert text_of(got) == "a" * 7
        with pytest.raises(json.JSONDecodeError):
            ask(fake)
        _, data = raw_sse(fake)
    assert data[2] == '{"choices": [ {"delta": ' and data[-1] == "[DONE]"


def test_cut_closes_mid_stream() -> None:
    with FakeLLM([{"text": "a" * 40, "cut": True}] * 2) as fake:
        got: list[Any] = []
        with pytest.raises(STREAM_CUT) as info:
            ask_stream(fake, got)
        assert not isinstance(info.value, openai.APITimeoutError)
        assert text_of(got) == "a" * 14
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            raw_sse(fake)


def test_no_done_still_ends_the_stream() -> None:
    with FakeLLM([{"text": "complete answer [1]", "no_done": True}] * 2) as fake:
        chunks = ask_stream(fake, [])
        assert text_of(chunks) == "complete answer [1]"
        assert chunks[-1].choices[0].finish_reason == "stop"
        _, data = raw_sse(fake)
    assert "[DONE]" not in data and json.loads(data[-1])["choices"][0]["finish_reason"] == "stop"


def test_echo_user_and_delay() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "old question"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "A: "}, IMAGE, {"type": "text", "text": "B"}],
        },
    ]
    with FakeLLM([{"echo_user": True}, {"text": "x" * 21, "delay": 0.02}]) as fake:
        assert ask(fake, messages).choices[0].message.content == "A: B"
        start = time.monotonic()
        assert text_of(ask_stream(fake, [])) == "x" * 21
        assert time.monotonic() - start >= 0.1  # 6 chunks, 0.02 s after each


def test_exit_is_fast_with_handlers_stuck() -> None:
    errors: list[BaseException] = []

    def call(spec: dict) -> None:
        fake.push(spec)
        try:
            raw_sse(fake, timeout=10)
        except httpx.HTTPError as e:
            errors.append(e)

    with FakeLLM() as fake:
        specs = [{"hang": 30}, {"text": "a" * 40, "stall_after": 1}]
        threads = [threading.Thread(target=call, args=(s,)) for s in specs]
        for t in threads:
            t.start()
        while len(fake.requests) < 2:
            time.sleep(0.01)
        time.sleep(0.05)  # let the stalled stream send its chunk
        start = time.monotonic()
    assert time.monotonic() - start < 1
    for t in threads:
        t.join(timeout=2)
    assert len(errors) == 2  # both clients see the connection end early
