"""Chat requests to any OpenAI-compatible endpoint, through the official ``openai`` SDK.

The SDK speaks the protocol (SSE parsing, tool-call deltas, status errors); this module
turns whatever goes wrong into polylens's own errors with a sentence a person can act
on, and puts bounds on time: a per-read timeout (a server that stops sending) and an
overall deadline (one that trickles forever). A stream that ends without ``[DONE]``
(``transformers serve`` does that) is a complete reply; one that breaks off mid-chunk is
an error, so a partial answer is never passed off as a whole one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from polylens.ask.settings import AskSettings
from polylens.errors import (
    EndpointError,
    EndpointProtocolError,
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    MissingExtraError,
)

DEADLINE_FACTOR = 10
"""A whole reply may take this many read timeouts before it is abandoned."""


@dataclass(frozen=True)
class TextPiece:
    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    tokens: dict[str, int]


Piece = TextPiece | ToolCall | Usage


class ChatClient:
    """One endpoint and model; :meth:`chat` yields the reply's pieces as they arrive."""

    def __init__(self, settings: AskSettings) -> None:
        settings.require_endpoint()
        try:
            import openai
        except ImportError as exc:
            raise MissingExtraError(
                "ask needs the openai client: pip install 'polylens[ask]'"
            ) from exc
        self.settings = settings
        self._openai = openai
        self._transport = _transport_errors()
        self._client = openai.OpenAI(
            base_url=settings.url,
            # Local servers need no key; the SDK insists on a non-empty one.
            api_key=settings.api_key or "no-key",
            timeout=settings.timeout,
            # A retry would take the whole timeout again while the user waits; the
            # caller sees the failure at once and decides.
            max_retries=0,
        )

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        stream: bool = True,
    ) -> Iterator[Piece]:
        request: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "max_tokens": self.settings.max_tokens,
            "temperature": 0,
        }
        if tools:
            request["tools"] = tools
        deadline = time.monotonic() + self.settings.timeout * DEADLINE_FACTOR
        started = [False]  # the reply has begun: a connection error now is a cut, not "down"
        with self._errors(started):
            if not stream:
                yield from self._whole(self._client.chat.completions.create(**request))
                return
            response = self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            started[0] = True
            try:
                yield from self._streamed(response, deadline)
            finally:
                response.close()

    def close(self) -> None:
        self._client.close()

    def _whole(self, completion: Any) -> Iterator[Piece]:
        if not getattr(completion, "choices", None):
            raise EndpointProtocolError(self._where("sent a reply without choices"))
        message = completion.choices[0].message
        if message.content:
            yield TextPiece(message.content)
        for call in message.tool_calls or ():
            yield ToolCall(call.function.name, _arguments(call.function.arguments))
        if completion.usage is not None:
            yield Usage(_usage(completion.usage))

    def _streamed(self, response: Any, deadline: float) -> Iterator[Piece]:
        calls: dict[int, dict[str, str]] = {}
        for chunk in response:
            if time.monotonic() > deadline:
                raise EndpointTimeoutError(
                    self._where(
                        f"did not finish its reply within "
                        f"{self.settings.timeout * DEADLINE_FACTOR:.0f} s"
                    )
                )
            if getattr(chunk, "usage", None) is not None:
                yield Usage(_usage(chunk.usage))
            for choice in chunk.choices or ():
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    yield TextPiece(delta.content)
                for call in delta.tool_calls or ():
                    slot = calls.setdefault(call.index or 0, {"name": "", "arguments": ""})
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
        for slot in calls.values():
            yield ToolCall(slot["name"], _arguments(slot["arguments"]))

    @contextmanager
    def _errors(self, started: list[bool]) -> Iterator[None]:
        openai = self._openai
        timeouts, transport, http_errors = self._transport
        try:
            yield
        except EndpointError:
            raise
        except (openai.APITimeoutError, *timeouts) as exc:
            if started[0]:
                raise EndpointTimeoutError(
                    self._where(f"stopped sending for {self.settings.timeout:g} s mid-reply")
                ) from exc
            raise EndpointTimeoutError(
                self._where(f"did not answer within {self.settings.timeout:g} s")
            ) from exc
        except (openai.APIConnectionError, *transport) as exc:
            if started[0]:
                raise EndpointProtocolError(
                    self._where(f"broke off its reply ({_cause(exc)})")
                ) from exc
            raise EndpointUnreachableError(
                self._where("cannot be reached (is the server running?)")
            ) from exc
        except openai.APIStatusError as exc:
            raise EndpointRejectedError(
                self._where(f"answered HTTP {exc.status_code}: {self._reason(exc)}"),
                status=exc.status_code,
            ) from exc
        except (openai.APIError, *http_errors) as exc:
            raise EndpointProtocolError(
                self._where(f"broke off its reply ({_cause(exc)})")
            ) from exc
        except (json.JSONDecodeError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EndpointProtocolError(
                self._where("sent a reply that is not OpenAI-compatible chat output")
            ) from exc

    def _where(self, what: str) -> str:
        return f"the model endpoint {self.settings.endpoint_label} {what}"

    def _reason(self, exc: Any) -> str:
        body = getattr(exc, "body", None)
        message = None
        if isinstance(body, dict):
            error = body.get("error", body)
            message = error.get("message") if isinstance(error, dict) else error
        text = " ".join(str(message or exc.message or "").split())[:300]
        key = self.settings.api_key
        return text.replace(key, "***") if key else text


def _transport_errors() -> tuple[tuple[type[BaseException], ...], ...]:
    """httpx's timeout, transport and base errors. openai 1.x and 2.x let these escape
    from a stream that stalls or breaks off mid-reply (3.x wraps them in its own)."""
    try:
        import httpx
    except ImportError:
        return (), (), ()
    return (httpx.TimeoutException,), (httpx.TransportError,), (httpx.HTTPError,)


def _cause(exc: BaseException) -> str:
    """The underlying error's class name: what broke, without any message text."""
    inner = exc.__cause__ or exc.__context__ or exc
    return type(inner).__name__


def _arguments(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _usage(usage: Any) -> dict[str, int]:
    names = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {name: int(getattr(usage, name, 0) or 0) for name in names}
