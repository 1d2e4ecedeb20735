"""The OpenAI-compatible vision chat server that the end-to-end tests of ``ask`` use.

``scripts/llm_test_server.sh start DIR`` runs ``transformers serve`` on a tiny
random-weight LLaVA (``tests/_tiny_llava.py``); CI starts it, a local run starts its own
(tests/_llm_server.py).  These tests
check, at the protocol level only, what ``ask`` relies on: a chat request with
a text part and a data-URL JPEG part is answered, streamed (SSE text deltas, then
the end of the stream, with or without ``data: [DONE]``, which ``transformers
serve`` does not send) and not streamed.  Any OpenAI-compatible server passes.
"""

from __future__ import annotations

import base64
import io
import json
import pathlib

import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="these tests talk HTTP with httpx: pip install httpx")

pytestmark = pytest.mark.slow

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
QUESTION = "What is in this image? Answer in one sentence."


@pytest.fixture(scope="module")
def llm(live_llm: tuple[str, str]) -> tuple[str, str]:
    """``(base_url, model)`` of the test server (the one CI started, else one started here)."""
    return live_llm


def _jpeg_data_url(size: tuple[int, int] = (64, 48), color=(200, 60, 30)) -> str:  # noqa: ANN001
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _messages(images: int = 1) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": QUESTION}]
    parts += [
        {"type": "image_url", "image_url": {"url": _jpeg_data_url(color=(40 * i, 120, 200))}}
        for i in range(images)
    ]
    return [{"role": "user", "content": parts}]


def test_streaming_chat_with_an_image(llm: tuple[str, str]) -> None:
    url, model = llm
    body = {"model": model, "messages": _messages(), "stream": True, "max_tokens": 32}
    deltas: list[str] = []
    finish_reasons: list[str] = []
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=TIMEOUT) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():  # ends when the server closes the stream
            if not line.startswith("data:"):
                continue  # blank separators, ": comments", "event:" lines
            payload = line[len("data:") :].strip()
            if payload == "[DONE]":  # transformers serve never sends it; OpenAI does
                break
            chunk = json.loads(payload)
            assert "error" not in chunk, chunk
            assert chunk["object"] == "chat.completion.chunk"
            for choice in chunk["choices"]:
                if choice["delta"].get("content"):
                    deltas.append(choice["delta"]["content"])
                if choice.get("finish_reason"):
                    finish_reasons.append(choice["finish_reason"])
    assert len(deltas) >= 2, f"expected several text deltas, got {deltas!r}"
    assert "".join(deltas).strip()
    assert finish_reasons and finish_reasons[-1] in {"stop", "length"}, finish_reasons


def test_non_streaming_chat_with_an_image(llm: tuple[str, str]) -> None:
    url, model = llm
    body = {"model": model, "messages": _messages(), "max_tokens": 16}
    response = httpx.post(f"{url}/chat/completions", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    choice = completion["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"].strip()
    assert choice["finish_reason"] in {"stop", "length"}
    usage = completion.get("usage")
    if usage:  # max_tokens is a cap on the answer
        assert 0 < usage["completion_tokens"] <= 16
        assert usage["prompt_tokens"] > 0


def test_openai_sdk_streams_and_answers(llm: tuple[str, str]) -> None:
    openai = pytest.importorskip("openai", reason="pip install 'openai>=1.40' for the SDK check")
    url, model = llm
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60.0)
    try:
        messages = _messages(images=2)  # two images in one message
        answer = client.chat.completions.create(model=model, messages=messages, max_tokens=16)
        assert answer.choices[0].message.content
        stream = client.chat.completions.create(
            model=model, messages=messages, max_tokens=16, stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.strip()
    finally:
        client.close()


def test_tiny_llava_generates_offline(tmp_path: pathlib.Path) -> None:
    """The server's model, in-process: builds, loads with the Auto classes, answers."""
    pytest.importorskip("transformers")
    from _tiny_llava import ANSWER_TOKENS, IMAGE_TOKENS, make_tiny_llava
    from transformers import AutoModelForImageTextToText, AutoProcessor

    directory = make_tiny_llava(tmp_path / "tiny-llava")
    processor = AutoProcessor.from_pretrained(directory)
    model = AutoModelForImageTextToText.from_pretrained(directory).eval()
    inputs = processor.apply_chat_template(
        _messages(images=2),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((inputs["input_ids"] == image_id).sum()) == 2 * IMAGE_TOKENS
    out = model.generate(**inputs, tokenizer=processor)
    new = out[0, inputs["input_ids"].shape[-1] :]
    assert new.shape[-1] == ANSWER_TOKENS + 1 and int(new[-1]) == processor.tokenizer.eos_token_id
    assert processor.decode(new, skip_special_tokens=True).strip()
    again = model.generate(**inputs, tokenizer=processor)
    assert again.tolist() == out.tolist()  # greedy: deterministic
