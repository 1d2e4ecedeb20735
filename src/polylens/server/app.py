"""The HTTP API and web page: ``create_app(index_dir)`` builds a FastAPI app.

No global state: the index, the job runner and the settings live on ``app.state``.
Items are addressed by id, never by path, and only files the index holds are served.
"""

from __future__ import annotations

import hmac
import importlib.util
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
DOCS_URL = "/docs"
DOCS_ASSETS_URL = "/docs-assets"
DOCS_ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
# Room for the multipart framing and the form fields next to the uploaded file.
FORM_OVERHEAD_BYTES = 64 << 10


def create_app(
    index_dir: str | Path,
    *,
    token: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_upload_pixels: int = MAX_UPLOAD_PIXELS,
    warm: bool = True,
    store: str | None = None,
) -> Any:
    """``store``: a store URL overriding the index's own setting (``--store``)."""
    fastapi = import_or_raise("fastapi", extra="server")
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from polylens.server.ask_routes import router as ask_router
    from polylens.server.jobs import JobRunner
    from polylens.server.loaded import searchable_index
    from polylens.server.routes import router
    from polylens.server.schemas import PATTERN_MESSAGES

    index = open_index(index_dir, create=False, store=store)

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
        # /docs comes from installed files (_add_api_docs below); no CDN-backed pages.
        docs_url=None,
        redoc_url=None,
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
    app.include_router(ask_router, prefix="/api")
    _add_api_docs(app)
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


def _docs_assets() -> Path | None:
    """The folder of Swagger UI files that the fastapi-offline package ships, or None."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if all((folder / name).is_file() for name in DOCS_ASSET_FILES) else None


def _add_api_docs(app: Any) -> None:
    """Swagger UI at /docs that works offline: the page and its assets come from us.

    FastAPI's own /docs and /redoc load JS, CSS and favicon from CDNs (blank offline).
    fastapi-offline (MIT, current Swagger UI 5) ships those files; we serve just its
    asset folder through StaticFiles (no paths outside it) with FastAPI's own page
    builder, keeping the plain FastAPI app. ReDoc stays off: its bundle still fetches
    its logo from cdn.redoc.ly. (swagger-ui-bundle vendors the old Swagger UI 4.15.5.)
    No package, no /docs, never a CDN page. Docs and assets are public like the web
    page; the token guards /api/* only."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = _docs_assets()
    if assets is None:
        log.warning("API docs at %s are off: pip install 'polylens[server]'", DOCS_URL)
        return
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")

    async def swagger_ui(request: Any) -> Any:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
        )

    # A plain Starlette route (as FastAPI adds its own /docs): it gets the request as is.
    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)


def _warm_read_model(index: Any) -> None:
    try:
        index.warm()
    except Exception as exc:  # noqa: BLE001 - searches keep working from the store
        log.warning("could not build the in-memory read model: %s", exc)


def _version() -> str:
    from polylens import __version__

    return __version__
