"""The work an indexing run plans: files to encode (tasks), cut into pieces (a PDF's
pages in ranges) so decoding overlaps encoding, and rows that need no encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polylens.ingest.sources import FoundFile


@dataclass(eq=False)
class Task:
    found: FoundFile
    content_hash: str
    file_kind: str
    status: str  # "added" | "updated"
    skip: set[str] = field(default_factory=set)
    pieces_left: int = 0
    unflushed: int = 0
    items: int = 0
    failed: bool = False
    written: bool = False

    @property
    def complete(self) -> bool:
        return not self.failed and self.pieces_left == 0 and self.unflushed == 0


@dataclass
class Piece:
    task: Task
    pages: range | None = None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    direct_rows: list[dict[str, Any]] = field(default_factory=list)
    seen_paths: set[str] = field(default_factory=set)
    unreadable_dirs: list[str] = field(default_factory=list)
