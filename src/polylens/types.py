"""Typed values that cross module boundaries: hits, run summaries, index status."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["image", "page", "text", "video"]
KINDS: tuple[str, ...] = ("image", "page", "text", "video")
"""Item kinds; new ones go last (filter masks number kinds in this order)."""

FileKind = Literal["image", "pdf", "text", "video"]


@dataclass(frozen=True)
class Hit:
    """One search result, best first in a result list.

    ``page`` is 1-based for PDF pages and ``None`` otherwise; ``chunk`` numbers the
    passages of a text file (0-based) and is ``None`` for images and pages; ``start``
    and ``end`` are a video segment's time range in seconds (``None`` for other kinds).
    ``sources`` names the representations that found the item (``image``, ``text``,
    ``bm25``, ...) with the item's rank in each, so a user can see why it matched.
    ``score`` is the fused rank score (it orders hits, it means nothing on its own);
    ``confidence`` estimates the probability that the hit is relevant, comparable across
    queries and indexes (None: no representation that found it measures evidence);
    ``weak``: the confidence is below the index's ``weak_below`` setting.
    """

    id: str
    path: str
    kind: str
    page: int | None
    score: float
    snippet: str | None = None
    chunk: int | None = None
    content_hash: str = ""
    other_paths: tuple[str, ...] = ()
    sources: dict[str, int] = field(default_factory=dict)
    confidence: float | None = None
    weak: bool = False
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["other_paths"] = list(self.other_paths)
        return data


class SearchResults(list[Hit]):
    """Hits best first, plus what the caller should know about how they were found.

    ``warnings``: parts of the query that could not run, and why (e.g. an image part on
    an index without image embeddings); ``has_more``: more hits exist past these;
    ``no_good_match``: the first ten hits of the whole result list (not only of this
    page) are all weak, so nothing found is likely to answer the query."""

    def __init__(
        self,
        hits: Iterable[Hit] = (),
        *,
        warnings: Iterable[str] = (),
        has_more: bool = False,
        no_good_match: bool = False,
    ) -> None:
        super().__init__(hits)
        self.warnings = list(warnings)
        self.has_more = has_more
        self.no_good_match = no_good_match


@dataclass(frozen=True)
class ItemInfo:
    id: str
    kind: str
    page: int | None
    chunk: int | None
    path: str
    other_paths: tuple[str, ...]
    text: str
    text_source: str | None
    width: int | None
    height: int | None
    content_hash: str
    file_kind: str
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["other_paths"] = list(self.other_paths)
        return data


@dataclass(frozen=True)
class DuplicateItem:
    """A member of a duplicate group. ``distance``: bits from the group's first item (0
    for exact copies, and for the first item itself)."""

    id: str
    path: str
    kind: str
    page: int | None
    distance: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DuplicateGroup:
    tier: str
    """``exact`` (same content in several files) or ``near`` (perceptual hashes close)."""
    items: list[DuplicateItem]

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "items": [item.to_dict() for item in self.items]}


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str


@dataclass
class RunSummary:
    """What one ``index`` run did. ``moved`` files kept their embeddings."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0
    skipped: int = 0
    items_written: int = 0
    items_backfilled: int = 0
    """Items that got the vectors of a model that was unavailable when they were indexed."""
    seconds: float = 0.0
    failures: list[FileFailure] = field(default_factory=list)
    skipped_files: list[FileFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        data = dict(data)
        data["failures"] = [FileFailure(**f) for f in data.get("failures", [])]
        data["skipped_files"] = [FileFailure(**f) for f in data.get("skipped_files", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class ModelInfo:
    """A model as the index records it; ``available`` is False when it could not load."""

    role: str
    name: str
    resolved: str | None
    dim: int | None
    available: bool
    reason: str | None = None
    """Why it is unavailable (or incomplete), in full: how to fix it."""
    summary: str | None = None
    """The same in a few words, for tables."""


@dataclass(frozen=True)
class RepresentationInfo:
    """One way the index represents items, as ``status`` shows it."""

    name: str
    title: str
    kinds: tuple[str, ...]
    model: str | None
    """Its model as given (None: it has no model)."""
    resolved: str | None
    """What the model resolved to, or the algorithm of one without a model."""
    dim: int | None
    available: bool
    reason: str | None = None
    """Why it cannot serve (or is incomplete)."""
    rows: int | None = None
    """Rows in its collection (None: it reads the items' own columns)."""
    version: int | None = None
    bytes: int | None = None
    """Bytes its derived search files take on disk (None: it keeps none, or unmeasured)."""


@dataclass(frozen=True)
class SearchAvailability:
    available: bool
    reason: str | None = None


@dataclass(frozen=True)
class IndexStatus:
    path: str
    files: int
    items: dict[str, int]
    models: list[ModelInfo]
    roots: list[str]
    size_bytes: int
    schema_version: int
    last_run: RunSummary | None
    image_search: SearchAvailability = SearchAvailability(True)
    """Whether the index can be searched by image, and if not why."""
    representations: list[RepresentationInfo] = field(default_factory=list)
    query_towers: dict[str, int] = field(default_factory=dict)
    """Bytes of each representation's query tower exported to ONNX (searches without torch)."""
    image_encoders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What runs each image model on this index's CPU runs (``encoder_runtime``): runtime,
    precision, the timings it was chosen by, and bytes on disk."""
    store: str = ""
    """Where the index's data lives (the embedded LanceDB store, or a Qdrant location)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Unit:
    """An item as decoding made it, on its way to the representations' encoders."""

    item_id: str
    content_hash: str
    kind: str
    page: int | None = None
    chunk: int | None = None
    text: str = ""
    text_source: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    """Per representation that reads pixels: its input made from the picture."""
    width: int | None = None
    height: int | None = None
    start: float | None = None
    end: float | None = None


@dataclass
class StageClock:
    """Seconds spent per stage, summed over threads (so it can exceed wall time)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + (time.perf_counter() - started)
