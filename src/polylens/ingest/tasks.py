"""The work an indexing run plans: files to encode (tasks), cut into pieces (a PDF's
pages in ranges) so decoding overlaps encoding, rows that need no encoding; the file
row a finished task writes, and the decode threads' priority."""

from __future__ import annotations

import os
import threading
import time
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
    video: tuple[Any, Any, tuple[float, float]] | None = None
    """A video's (VideoInfo, SegmentRules, window) for a piece of one."""

    @property
    def heavy(self) -> bool:
        """Decoding it yields many units (a video window): few are decoded ahead."""
        return self.video is not None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    direct_rows: list[dict[str, Any]] = field(default_factory=list)
    seen_paths: set[str] = field(default_factory=set)
    unreadable_dirs: list[str] = field(default_factory=list)


def file_row(entry: FoundFile, digest: str, kind: str, n_items: int) -> dict[str, Any]:
    return {
        "path": entry.path,
        "content_hash": digest,
        "file_kind": kind,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "n_items": n_items,
        "indexed_at": time.time(),
    }


def yield_to_the_encoder() -> None:
    """Lower this decode thread's CPU priority (Linux: per thread).

    The encoder's intra-op threads meet at a barrier after every operator, so a decode
    thread that takes a core from one of them stalls all of them: on two cores that
    halved the encoder's rate. At a lower priority, decoding fills the encoder's idle
    moments instead, and still gets the cores whenever the encoder waits for input."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: run as is
        pass
