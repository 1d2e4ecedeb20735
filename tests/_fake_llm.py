"""A scripted, deterministic OpenAI-compatible chat-completions server for tests.

``FakeLLM`` is a real HTTP/1.1 server on 127.0.0.1 (ephemeral port) in a background thread,
so the code under test talks to it through its real client (the ``openai`` SDK or httpx).
Each ``POST /v1/chat/completions`` pops the next reply spec from a FIFO queue (``default``
when it is empty); ``GET /v1/models`` lists ``model``; anything else is a 404.

It is written by hand on ``http.server`` on purpose: tests need it to misbehave in ways no
library server offers (hang before the headers, stall mid-stream, cut the chunked body
without its terminating chunk, send truncated JSON in an SSE event, omit ``[DONE]``).

Reply spec keys (combine where sensible)::

    text: str               the assistant reply (default "ok")
    chunks: int | list[str] streamed pieces: N roughly equal ones, or exactly these
                            (default: every 7 characters, so "[12]" is often split)
    tool_call: {"name", "arguments": dict}   one tool call, finish_reason "tool_calls"
    status: int, body: dict | str            that HTTP status and body (OpenAI-style error)
    reject_images: True     400 if any content part is an image_url, else as the rest says
    reject_tools: True      400 if the request has tools, else as the rest says
    hang: float             send nothing for that many seconds, then reply normally
    stall_after: int        stream: send N content chunks, then nothing until shutdown (30 s)
    malformed: True         stream: a truncated-JSON event after the first chunk;
                            non-stream: a 200 whose body is not JSON
    cut: True               stream: two content chunks, then close mid-body
    no_done: True           stream: everything but "data: [DONE]", then close cleanly
    echo_user: True         text = the text parts of the last user message, concatenated
    delay: float            sleep between streamed chunks

A spec that rejects (images, tools) is consumed like any other: script the retry's reply
too, or put the spec in ``default``.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import threading
import time
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Spec = dict[str, Any]


def _error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _split(text: str, chunks: int | list[str] | None) -> list[str]:
    if isinstance(chunks, list):
        assert "".join(chunks) == text, f"chunks {chunks!r} do not add up to {text!r}"
        return list(chunks)
    size = math.ceil(len(text) / chunks) if chunks else 7
    return [text[i : i + size] for i in range(0, len(text), max(size, 1))]


def _words(text: str) -> int:
    return len(text.split())


def _text_parts(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content or []
    return "".join(
        p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"
    )


class FakeLLM:
    """Use as a context manager; ``url`` is the base URL to give the client."""

    def __init__(
        self,
        replies: list[Spec] | None = None,
        *,
        default: Spec | None = None,
        model: str = "fake-vlm",
    ) -> None:
        self.model = model
        self.default: Spec = {"text": "ok"} if default is None else default
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""
        self._queue: list[Spec] = list(replies or [])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._calls = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def push(self, *replies: Spec) -> None:
        with self._lock:
            self._queue.extend(replies)

    def __enter__(self) -> FakeLLM:
        fake = self

        class Handler(_Handler):
            llm = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._stop.set()  # wakes hang / stall / delay waits
        self._server.shutdown()  # no new connections after this
        for sock, _ in self._server.handlers:  # ends reads of the next keep-alive request
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass
        self._server.server_close()
        deadline = time.monotonic() + 1
        for thread in [self._thread, *(t for _, t in self._server.handlers)]:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[Spec, int]:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            spec = self._queue.pop(0) if self._queue else self.default
            if "tool_call" in spec:
                self._calls += 1
            return spec, self._calls


class _Server(ThreadingHTTPServer):
    """One daemon thread per connection, each kept with its socket so exit can end them all."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.handlers: list[tuple[socket.socket, threading.Thread]] = []

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        self.handlers = [h for h in self.handlers if h[1].is_alive()] + [(request, thread)]
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exception(), OSError):  # a client hanging up is no news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes
    llm: FakeLLM

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _json(self, status: int, body: Any) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": self.llm.model, "object": "model"}]})
        else:
            self._json(404, _error(404, f"no route {self.path}", "not_found"))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._json(404, _error(404, f"no route {self.path}", "not_found"))
        try:
            body = json.loads(raw)
        except ValueError:
            return self._json(400, _error(400, "request body is not JSON"))
        headers = {k.lower(): v for k, v in self.headers.items()}
        spec, call = self.llm._next(body, headers)
        try:
            self._reply(spec, body, call)
        except OSError:  # the client went away (timeouts, cancelled streams)
            self.close_connection = True

    def _reply(self, spec: Spec, req: dict[str, Any], call: int) -> None:
        messages = req.get("messages") or []
        parts = [p for m in messages if isinstance(m.get("content"), list) for p in m["content"]]
        if spec.get("reject_images") and any(p.get("type") == "image_url" for p in parts):
            return self._json(400, _error(400, "image input is not supported"))
        if spec.get("reject_tools") and req.get("tools"):
            return self._json(400, _error(400, "tools are not supported"))
        if "status" in spec:
            status = spec["status"]
            message = f"fake {status} {responses.get(status, 'error')}"
            return self._json(status, spec.get("body", _error(status, message)))
        if spec.get("hang") and self.llm._stop.wait(spec["hang"]):
            self.close_connection = True
            return None
        text: str | None = spec.get("text", None if "tool_call" in spec else "ok")
        if spec.get("echo_user"):
            users = [m for m in messages if m.get("role") == "user"]
            text = _text_parts(users[-1].get("content")) if users else ""
        tool = spec.get("tool_call")
        call_json = None
        args = json.dumps(tool.get("arguments", {})) if tool else ""
        if tool:
            call_json = {"id": f"call_{call}", "type": "function"}
            call_json["function"] = {"name": tool["name"], "arguments": args}
        usage = {"prompt_tokens": sum(_words(_text_parts(m.get("content"))) for m in messages)}
        usage["completion_tokens"] = _words(text or "") + _words(args)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        finish = "tool_calls" if tool else "stop"
        base = {"id": f"chatcmpl-fake{len(self.llm.requests)}", "created": int(time.time())}
        base["model"] = req.get("model") or self.llm.model
        if not req.get("stream"):
            if spec.get("malformed"):
                return self._json(200, '{"id": "chatcmpl-fake", "choices": [ {"mess')
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if call_json:
                message["tool_calls"] = [call_json]
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return self._json(
                200, {**base, "object": "chat.completion", "choices": [choice]} | {"usage": usage}
            )
        self._stream(spec, req, base, text, call_json, finish, usage)
        return None

    def _stream(
        self,
        spec: Spec,
        req: dict[str, Any],
        base: dict[str, Any],
        text: str | None,
        call_json: dict[str, Any] | None,
        finish: str,
        usage: dict[str, int],
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        stop = self.llm._stop

        def send(data: str) -> None:
            raw = data.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()

        def event(delta: dict[str, Any], reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": reason}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            send(f"data: {json.dumps(chunk)}\n\n")
            if spec.get("delay"):
                stop.wait(spec["delay"])

        event({"role": "assistant", "content": ""})
        pieces = _split(text or "", spec.get("chunks"))
        halt = 2 if spec.get("cut") else spec.get("stall_after")
        for n, piece in enumerate(["", *pieces]):
            if n:
                event({"content": piece})
            if spec.get("malformed") and n == 1:
                send('data: {"choices": [ {"delta": \n\n')
            if halt is not None and n == min(halt, len(pieces)):
                if not spec.get("cut"):
                    stop.wait(30)
                self.close_connection = True  # no terminating chunk: an incomplete body
                return
        if call_json:
            fn = call_json["function"]
            head = {"index": 0, "id": call_json["id"], "type": "function"}
            event({"tool_calls": [head | {"function": {"name": fn["name"], "arguments": ""}}]})
            size = spec["chunks"] if isinstance(spec.get("chunks"), int) else None
            for piece in _split(fn["arguments"], size):
                event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        event({}, finish)
        if (req.get("stream_options") or {}).get("include_usage"):
            chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            send(f"data: {json.dumps(chunk)}\n\n")
        if spec.get("no_done"):
            self.close_connection = True
        else:
            send("data: [DONE]\n\n")
        send("")  # the terminating zero-length chunk
