"""The HTTP API and web page: ``create_app(index_dir)`` builds a FastAPI app.

No global state: the index, the job runner and the settings live on ``app.state``.
Items are addressed by id, never by path, and only files the index holds are served.
"""

from __future__ import annotations

import hmac
import io
import logging
import threading
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from polylens._lazy import import_or_raise
from polylens.engine import open_index
from polylens.errors import PolylensError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 20 << 20
MAX_UPLOAD_PIXELS = 50_000_000
_STATUSES = {s.value for s in HTTPStatus}
# Room for the multipart framing and the form fields next to the uploaded file.
FORM_OVERHEAD_BYTES = 64 << 10


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
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from polylens.server.jobs import JobRunner
    from polylens.server.routes import router
    from polylens.server.schemas import PATTERN_MESSAGES

    index = open_index(index_dir, create=False)

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        if warm:
            searchable_index(app.state)  # load query encoders before the first request
            # Build the in-memory read model while the first requests are answered from
            # the store; from then on searches skip store round trips.
            threading.Thread(target=_warm_read_model, args=(index,), daemon=True).start()
        yield
        index.close()

    app = fastapi.FastAPI(
        title="polylens",
        version=_version(),
        description="Search an index of photos, scans, PDFs and text.",
        lifespan=lifespan,
        # Refuse larger bodies (413) while they arrive, before the multipart parser has
        # spooled them to disk: the upload route's own check sees them only once stored.
        max_body_size=max_upload_bytes + FORM_OVERHEAD_BYTES,
    )
    app.state.index = index
    app.state.models_lock = threading.Lock()
    app.state.models_ready = False
    app.state.jobs = JobRunner(index, models_lock=app.state.models_lock)
    app.state.token = token
    app.state.max_upload_bytes = max_upload_bytes
    app.state.max_upload_pixels = max_upload_pixels

    @app.exception_handler(PolylensError)
    async def polylens_error(request: Any, exc: PolylensError) -> Any:
        return JSONResponse(
            {"error": type(exc).__name__.rstrip("_"), "detail": str(exc)},
            status_code=exc.http_status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Any, exc: Any) -> Any:
        # Framework errors (unknown route, wrong method, unparsable body) in the API's
        # one error shape, {"error", "detail"}, with their headers (e.g. Allow) kept.
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in _STATUSES else "Error"
        error, detail = phrase.replace(" ", ""), str(exc.detail)
        if exc.status_code == 413:
            error = "PayloadTooLarge"
            detail = f"request bodies are limited to {max_upload_bytes + FORM_OVERHEAD_BYTES} bytes"
        return JSONResponse(
            {"error": error, "detail": detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Any, exc: Any) -> Any:
        problems = []
        for error in exc.errors():
            where = ".".join(
                str(part) for part in error.get("loc", ()) if part not in ("query", "body")
            )
            message = error.get("msg", "invalid")
            pattern = (error.get("ctx") or {}).get("pattern")
            message = PATTERN_MESSAGES.get(pattern, message) if pattern else message
            problems.append(f"{where}: {message}" if where else message)
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


def searchable_index(state: Any) -> Any:
    """The app's index with its query encoders loaded, loaded once.

    The engine loads models lazily and without a lock; handlers run in a thread pool, so
    concurrent first searches would each load every model (twice the memory and time, and
    loaders that are not thread-safe). One lock per app makes the first search load them
    while the others wait; after that this is one attribute read."""
    if not state.models_ready:
        with state.models_lock:
            if not state.models_ready:
                state.index._searcher()  # noqa: SLF001 - loads the encoders
                state.models_ready = True
    return state.index


def _warm_read_model(index: Any) -> None:
    try:
        index.warm()
    except Exception as exc:  # noqa: BLE001 - searches keep working from the store
        log.warning("could not build the in-memory read model: %s", exc)


def _version() -> str:
    from polylens import __version__

    return __version__


def encode_image(image: Any, fmt: str = "JPEG", quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format=fmt, quality=quality)
    return buf.getvalue()
