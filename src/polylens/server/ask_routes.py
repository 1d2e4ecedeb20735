"""``POST /api/ask``: an answer as JSON, or streamed as server-sent events.

The endpoint and model are the index owner's settings (``polylens.toml`` or the
server's environment); a request cannot name another URL or model, so the server is
never a proxy to wherever a client points it. Errors before the stream starts are HTTP
statuses; once it has started they arrive as an ``error`` event and the stream ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from polylens.errors import PolylensError
from polylens.server.loaded import searchable_index
from polylens.server.schemas import NOT_BLANK, ErrorOut

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 422, 501, 502, 503, 504)
}


class ReferenceOut(BaseModel):
    n: int
    id: str
    path: str
    kind: str
    page: int | None
    chunk: int | None
    confidence: float | None
    snippet: str | None = None
    sent_as: str
    """``image+text``, ``text``, or ``none`` (closest items of an abstained answer)."""
    round: int
    start: float | None = None
    end: float | None = None
    """A video segment's time range in seconds."""


class SentenceOut(BaseModel):
    text: str
    citations: list[int]
    uncited: bool


class RoundOut(BaseModel):
    query: str
    added: list[int]


class AnswerOut(BaseModel):
    question: str
    answer: str
    sentences: list[SentenceOut]
    references: list[ReferenceOut]
    abstained: bool
    abstain_reason: str | None
    """``no_good_match`` (no model was asked) or ``model`` (it said the evidence is not enough)."""
    dropped_citations: int
    usage: dict[str, int]
    rounds: list[RoundOut]
    model: str | None
    fallbacks: list[str]


EVENTS = ("evidence", "round", "delta", "citations", "done", "error")
STREAM_DOC = {
    200: {
        "model": AnswerOut,
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "One server-sent event; ``data`` is JSON.",
                    "properties": {
                        "event": {"type": "string", "enum": list(EVENTS)},
                        "data": {"type": "string"},
                    },
                    "required": ["event", "data"],
                }
            }
        },
    }
}


def _json_number(value: Any) -> Any:
    """JSON's integers (6, or 6.0), not what pydantic would coerce (true, "6")."""
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    return value


class AskIn(BaseModel):
    """A question. Unknown fields (an ``endpoint``, a ``model``) are refused."""

    model_config = ConfigDict(extra="forbid")
    question: Annotated[str, Field(min_length=1, max_length=2000, pattern=NOT_BLANK)]
    max_evidence: Annotated[int, Field(ge=1, le=50), BeforeValidator(_json_number)] | None = None
    rounds: Annotated[int, Field(ge=1, le=10), BeforeValidator(_json_number)] | None = None
    stream: Annotated[bool, Field(strict=True)] = False
    """Stream server-sent events (also when the request accepts text/event-stream)."""


@router.post("/ask", responses={**ERRORS, **STREAM_DOC}, response_model=AnswerOut)
def ask(request: Request, body: AskIn) -> Any:
    """Answer from the index's evidence, each sentence with its citations. Streamed
    events: ``evidence`` (the items chosen), ``round`` (another search), ``delta`` (the
    next piece of text), ``citations`` (a finished sentence), ``done`` (the answer),
    ``error`` (the stream ends early: ``error``, ``detail``, ``status``)."""
    index = searchable_index(request.app.state)
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    events = index.ask_stream(
        body.question,
        max_evidence=body.max_evidence,
        rounds=body.rounds,
        stream=wants_stream,
    )
    first = next(events)  # errors before any model call are plain HTTP errors
    if not wants_stream:
        for event in _chain(first, events):
            if event.type == "done":
                return event.data
        raise RuntimeError("the answer stream ended without a result")  # a bug
    return StreamingResponse(
        _sse(_chain(first, events)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _sse(events: Iterator[Any]) -> Iterator[str]:
    try:
        for event in events:
            yield _frame(event.type, event.data)
    except PolylensError as exc:
        yield _frame(
            "error",
            {
                "error": type(exc).__name__.rstrip("_"),
                "detail": str(exc),
                "status": exc.http_status,
            },
        )


def _frame(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
