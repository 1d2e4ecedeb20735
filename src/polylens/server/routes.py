"""JSON API routes. Handlers are sync: FastAPI runs them in its thread pool, so model
inference never blocks the event loop."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse, Response

from polylens.errors import InputError, ItemNotFoundError
from polylens.server.loaded import encode_image, searchable_index
from polylens.server.schemas import (
    NO_NUL,
    NOT_BLANK,
    DuplicatesOut,
    ErrorOut,
    HeatmapOut,
    ItemOut,
    JobOut,
    SearchIn,
    SearchOut,
    document_kinds,
)
from polylens.types import SearchResults

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 413, 415, 422, 503)
}
# Originals in these formats are sent as they are; anything else is re-encoded.
BROWSER_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
# Videos are sent as they are (browsers seek in them with Range requests), typed by their
# file name's extension, else by their container's signature.
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
    ".qt": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".ts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".3gp": "video/3gpp",
    ".ogv": "video/ogg",
}
VIDEO_FALLBACK = "application/octet-stream"

KindQuery = Annotated[
    list[str] | None,
    Query(description="image, page, text or video (repeatable)", json_schema_extra=document_kinds),
]


def _hits(hits: SearchResults, k: int, offset: int, query: str | None) -> SearchOut:
    return SearchOut(
        hits=[h.to_dict() for h in hits],
        k=k,
        offset=offset,
        query=query,
        has_more=hits.has_more,
        warnings=hits.warnings,
        no_good_match=hits.no_good_match,
    )


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/status", responses=ERRORS)
def status(request: Request) -> dict[str, Any]:
    return request.app.state.index.status().to_dict()


@router.get("/search", response_model=SearchOut, responses=ERRORS)
def search_get(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=2000, pattern=NOT_BLANK)],
    k: Annotated[int, Query(ge=1, le=200)] = 24,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    kind: KindQuery = None,
    path_prefix: Annotated[str | None, Query(max_length=4096, pattern=NO_NUL)] = None,
) -> SearchOut:
    hits = searchable_index(request.app.state).search(
        q, k=k, offset=offset, kind=kind, path_prefix=path_prefix
    )
    return _hits(hits, k, offset, q)


@router.post("/search", response_model=SearchOut, responses=ERRORS)
def search_post(request: Request, body: SearchIn) -> SearchOut:
    hits = searchable_index(request.app.state).search(
        body.q, k=body.k, offset=body.offset, kind=body.kind, path_prefix=body.path_prefix
    )
    return _hits(hits, body.k, body.offset, body.q)


@router.post("/search/image", response_model=SearchOut, responses=ERRORS)
def search_image(
    request: Request,
    file: Annotated[UploadFile, File(description="The query image")],
    q: Annotated[str | None, Form(max_length=2000)] = None,
    k: Annotated[int, Form(ge=1, le=200)] = 24,
    offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
    kind: Annotated[list[str] | None, Form(json_schema_extra=document_kinds)] = None,
) -> SearchOut:
    state = request.app.state
    data = file.file.read(state.max_upload_bytes + 1)
    if len(data) > state.max_upload_bytes:
        return Response(  # type: ignore[return-value]
            content=f'{{"error":"PayloadTooLarge","detail":"uploads are limited to {state.max_upload_bytes} bytes"}}',
            status_code=413,
            media_type="application/json",
        )
    if not data:
        raise InputError("the uploaded file is empty")
    from polylens.ingest.images import load_image

    image = load_image(
        data, max_pixels=state.max_upload_pixels, max_side=state.index.config.max_image_side
    )
    hits = searchable_index(state).search(q or None, image=image, k=k, offset=offset, kind=kind)
    return _hits(hits, k, offset, q)


@router.get("/items/{item_id}", response_model=ItemOut, responses=ERRORS)
def item(request: Request, item_id: str) -> ItemOut:
    return ItemOut(**request.app.state.index.item(item_id).to_dict())


@router.get(
    "/items/{item_id}/text",
    responses={**ERRORS, 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    response_class=Response,  # no media type of its own: the errors stay documented as JSON
)
def item_text(request: Request, item_id: str) -> Response:
    text = request.app.state.index.item(item_id).text
    return PlainTextResponse(text)


@router.get("/items/{item_id}/similar", response_model=SearchOut, responses=ERRORS)
def similar(
    request: Request,
    item_id: str,
    k: Annotated[int, Query(ge=1, le=200)] = 24,
    kind: KindQuery = None,
) -> SearchOut:
    hits = searchable_index(request.app.state).similar(item_id, k=k, kind=kind)
    return _hits(hits, k, 0, None)


@router.get("/items/{item_id}/heatmap", response_model=HeatmapOut, responses=ERRORS)
def heatmap(
    request: Request,
    item_id: str,
    q: Annotated[str, Query(min_length=1, max_length=2000, pattern=NOT_BLANK)],
) -> HeatmapOut:
    """Which patches of a page matched the query (late-interaction pages): a grid of
    ``rows x cols`` values in 0..1, row-major, to lay over the page's picture."""
    return HeatmapOut(**searchable_index(request.app.state).heatmap(item_id, q))


@router.get("/items/{item_id}/duplicates", response_model=DuplicatesOut, responses=ERRORS)
def duplicates(
    request: Request,
    item_id: str,
    threshold: Annotated[int | None, Query(ge=0, le=32)] = None,
) -> DuplicatesOut:
    """Near-duplicate pictures of the item (perceptual hashes within ``threshold`` bits),
    nearest first; its exact copies are the item's ``other_paths``."""
    found = request.app.state.index.duplicates_of(item_id, threshold=threshold)
    return DuplicatesOut(items=[d.to_dict() for d in found])


@router.get(
    "/items/{item_id}/thumbnail",
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}},
    response_class=Response,
)
def thumbnail(
    request: Request, item_id: str, size: Annotated[int, Query(ge=32, le=1024)] = 320
) -> Response:
    image = request.app.state.index.item_image(item_id, max_side=size)
    return Response(
        encode_image(image),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get(
    "/items/{item_id}/image",
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}, "image/png": {}}}},
    response_class=Response,
)
def full_image(request: Request, item_id: str) -> Response:
    from PIL import Image

    index = request.app.state.index
    info = index.item(item_id)
    if info.kind == "image":
        path = index.item_file(item_id)
        with Image.open(path) as probe:
            fmt = probe.format or ""
            upright = probe.getexif().get(0x0112, 1) in (0, 1)
        if fmt in BROWSER_FORMATS and upright:
            return FileResponse(path, media_type=BROWSER_FORMATS[fmt])
    image = index.item_image(item_id, max_side=2400)
    return Response(encode_image(image, quality=90), media_type="image/jpeg")


@router.get(
    "/items/{item_id}/video",
    responses={
        **ERRORS,
        200: {"content": {t: {} for t in dict.fromkeys([*VIDEO_TYPES.values(), VIDEO_FALLBACK])}},
        206: {"description": "The byte ranges asked for with a Range header"},
        416: {"description": "The Range header lies past the end of the file"},
    },
    response_class=Response,
)
def video(request: Request, item_id: str) -> Response:
    """The video file holding a video segment, as it is, for a ``<video>`` element: HTTP
    Range requests are answered (206 Partial Content) so that a player can seek to the
    segment's ``start``. Other kinds of item have no video (404)."""
    index = request.app.state.index
    info = index.item(item_id)
    if info.kind != "video":
        raise ItemNotFoundError(
            f"item {item_id!r} is not a video segment (its kind is {info.kind!r}); it has no video"
        )
    path = index.item_file(item_id)
    try:
        stat = os.stat(path)
    except OSError as exc:  # gone since item_file looked
        raise ItemNotFoundError(f"the file of item {item_id!r} is gone") from exc
    return FileResponse(
        path,
        media_type=video_type(path),
        stat_result=stat,
        filename=os.path.basename(path),
        content_disposition_type="inline",
        # the id names the content: the same URL serves the same bytes
        headers={"Cache-Control": "private, max-age=3600"},
    )


def video_type(path: str) -> str:
    """A video file's media type: by its extension, else by its container's signature."""
    known = VIDEO_TYPES.get(os.path.splitext(path)[1].lower())
    if known:
        return known
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return VIDEO_FALLBACK
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "video/quicktime"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:4] == b"\x00\x00\x01\xba":
        return "video/mpeg"
    return VIDEO_FALLBACK


@router.post("/reindex", response_model=JobOut, status_code=202, responses=ERRORS)
def reindex(request: Request) -> JobOut | Response:
    job = request.app.state.jobs.start()
    if job is None:
        return Response(
            content='{"error":"Conflict","detail":"a re-index is already running"}',
            status_code=409,
            media_type="application/json",
        )
    return JobOut(**vars(job))


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS)
def job(request: Request, job_id: str) -> JobOut:
    found = request.app.state.jobs.jobs.get(job_id)
    if found is None:
        from polylens.errors import ItemNotFoundError

        raise ItemNotFoundError(f"no job {job_id!r}")
    return JobOut(**vars(found))
