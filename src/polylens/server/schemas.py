"""Response models: they document the API in OpenAPI and validate what it sends."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HitOut(BaseModel):
    id: str
    path: str
    kind: str
    page: int | None
    score: float
    snippet: str | None
    chunk: int | None
    content_hash: str
    other_paths: list[str]
    sources: dict[str, int]


class SearchOut(BaseModel):
    hits: list[HitOut]
    k: int
    offset: int
    query: str | None = None


class SearchIn(BaseModel):
    q: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=24, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10_000)
    kind: list[str] | None = None
    path_prefix: str | None = None


class ItemOut(BaseModel):
    id: str
    kind: str
    page: int | None
    chunk: int | None
    path: str
    other_paths: list[str]
    text: str
    text_source: str | None
    width: int | None
    height: int | None


class ErrorOut(BaseModel):
    error: str
    detail: str


class JobOut(BaseModel):
    id: str
    state: str
    files_total: int | None = None
    files_done: int = 0
    items: int = 0
    summary: dict | None = None
    error: str | None = None
