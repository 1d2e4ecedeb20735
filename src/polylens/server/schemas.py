"""Response models: they document the API in OpenAPI and validate what it sends."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from polylens.types import KINDS

# At least one character that Python's str.strip() keeps: a blank query is refused by
# validation (422) instead of reaching the engine. Spelled as an explicit class so that
# JSON Schema (ECMA), Python and pydantic's regex engines all read it the same way.
NOT_BLANK = (
    "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
# No NUL bytes in a path: no file system path holds one.
NO_NUL = "^[^\\x00]*$"
PATTERN_MESSAGES = {NOT_BLANK: "must not be blank", NO_NUL: "must not contain NUL bytes"}


def document_kinds(schema: dict[str, Any]) -> None:
    """Document ``kind`` (a list or null) as a list of the known kinds. The engine checks
    the values, so an unknown kind is a 400 that names the accepted ones."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option["items"] = {"type": "string", "enum": list(KINDS)}


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
    confidence: float | None = None
    """Estimated probability that the hit is relevant, comparable across queries (None:
    nothing that found it measures evidence). ``score`` only orders hits."""
    weak: bool = False
    """Confidence below the index's ``weak_below`` setting."""
    start: float | None = None
    """A video segment's time range in seconds: where it starts (None for other kinds)."""
    end: float | None = None
    """A video segment's time range in seconds: where it ends (None for other kinds)."""


class SearchOut(BaseModel):
    hits: list[HitOut]
    k: int
    offset: int
    query: str | None = None
    has_more: bool = False
    """More hits exist past this page (ask again with offset + k)."""
    warnings: list[str] = Field(default_factory=list)
    """Parts of the query that could not run, and why; the rest of the query did."""
    no_good_match: bool = False
    """The query's first ten hits (whatever the page) are all weak: nothing found is likely
    to answer it."""


class SearchIn(BaseModel):
    q: str = Field(min_length=1, max_length=2000, pattern=NOT_BLANK)
    k: int = Field(default=24, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10_000)
    kind: list[str] | None = Field(default=None, json_schema_extra=document_kinds)
    path_prefix: str | None = Field(default=None, max_length=4096, pattern=NO_NUL)

    @field_validator("k", "offset", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # JSON `true` is not the integer 1 (pydantic's lax mode would take it); 24.0 is.
        if isinstance(value, bool):
            raise ValueError("must be an integer, not a boolean")
        return value


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
    start: float | None = None
    """A video segment's time range in seconds: where it starts (None for other kinds)."""
    end: float | None = None
    """A video segment's time range in seconds: where it ends (None for other kinds)."""


class DuplicateOut(BaseModel):
    id: str
    path: str
    kind: str
    page: int | None
    distance: int
    """Bits (of 64) between this picture's perceptual hash and the item's."""


class DuplicatesOut(BaseModel):
    items: list[DuplicateOut]


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


class HeatmapOut(BaseModel):
    rows: int
    cols: int
    values: list[float]
    """``rows x cols`` values in 0..1, row-major: how much of the query's MaxSim each patch
    of the page carried."""
    score: float
    """The page's MaxSim for the query."""
    tokens: int
    tokens_on_page: int
    """Query tokens whose best match is an image patch (the rest matched prompt tokens)."""
