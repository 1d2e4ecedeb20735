"""The HTTP API and web page: ``create_app(index_dir)`` builds a FastAPI app.

No global state: the index, the job runner and the settings live on ``app.state``.
Items are addressed by id, never by path, and only files the index holds are served.
"""

from __future__ import annotations

import hmac
import io
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from polylens._lazy import import_or_raise
from polylens.engine import open_index
from polylens.errors import PolylensError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 20 << 20
MAX_UPLOAD_PIXELS = 50_000_000


def create_app(
    index_dir: str | Path,
    *,
    token: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_upload_pixels: int = MAX_UPLOAD_PIXELS,
    warm: bool = True,
) -> Any:
    fastapi = import_or_raise("fastapi", extra="server")
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from polylens.server.jobs import JobRunner
    from polylens.server.routes import router

    index = open_index(index_dir, create=False)

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        if warm:
            index._searcher()  # load query encoders before the first request  # noqa: SLF001
        yield
        index.close()

    app = fastapi.FastAPI(
        title="polylens",
        version=_version(),
        description="Search an index of photos, scans, PDFs and text.",
        lifespan=lifespan,
    )
    app.state.index = index
    app.state.jobs = JobRunner(index)
    app.state.token = token
    app.state.max_upload_bytes = max_upload_bytes
    app.state.max_upload_pixels = max_upload_pixels

    @app.exception_handler(PolylensError)
    async def polylens_error(request: Any, exc: PolylensError) -> Any:
        return JSONResponse(
            {"error": type(exc).__name__.rstrip("_"), "detail": str(exc)},
            status_code=exc.http_status,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Any, exc: Any) -> Any:
        problems = []
        for error in exc.errors():
            where = ".".join(
                str(part) for part in error.get("loc", ()) if part not in ("query", "body")
            )
            problems.append(
                f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "")
            )
        return JSONResponse(
            {"error": "ValidationError", "detail": "; ".join(problems) or "invalid request"},
            status_code=422,
        )

    @app.middleware("http")
    async def require_token(request: Any, call_next: Any) -> Any:
        expected = request.app.state.token
        if expected and request.url.path.startswith("/api/") and request.url.path != "/api/health":
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return JSONResponse(
                    {"error": "Unauthorized", "detail": "a valid access token is required"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    app.include_router(router, prefix="/api")
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> Any:
        html = STATIC / "index.html"
        if not html.is_file():
            return JSONResponse(
                {"error": "NotFound", "detail": "the web page is not installed"}, 404
            )
        return FileResponse(html, media_type="text/html")

    return app


def _version() -> str:
    from polylens import __version__

    return __version__


def encode_image(image: Any, fmt: str = "JPEG", quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, quality=quality)
    return buf.getvalue()
