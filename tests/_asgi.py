"""Raw ASGI requests: a request target sent exactly as written (no client-side
normalisation of ``..`` or percent-escapes), decoded the way uvicorn decodes it."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote


def raw_request(
    app: Any, method: str, raw_target: bytes, headers: list | None = None
) -> tuple[int, bytes]:
    """Send a request target exactly as written (no client-side normalisation of ``..``
    or percent-escapes), decoded the way uvicorn decodes it."""
    raw_path, _, query = raw_target.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict] = []
    requested = []

    async def receive() -> dict:
        if requested:  # the client stays connected until the response is sent
            await asyncio.sleep(60)
            return {"type": "http.disconnect"}
        requested.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body
