"""Re-indexing as a background job whose progress the API can report."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from polylens.engine import Index
from polylens.errors import PolylensError
from polylens.ingest.events import ProgressEvents


@dataclass
class Job:
    id: str
    state: str = "running"  # running | done | failed
    files_total: int | None = None
    files_done: int = 0
    items: int = 0
    summary: dict[str, Any] | None = None
    error: str | None = None


class _JobEvents(ProgressEvents):
    def __init__(self, job: Job) -> None:
        self.job = job

    def planned(self, files_to_encode: int) -> None:
        self.job.files_total = files_to_encode

    def file_done(self, path: str, items: int) -> None:
        self.job.files_done += 1

    def units_encoded(self, count: int) -> None:
        self.job.items += count


@dataclass
class JobRunner:
    """One re-index at a time per server; finished jobs stay readable."""

    index: Index
    # Held while the job loads its encoders, so that it never loads them at the same time
    # as a first search does (see ``searchable_index``).
    models_lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: Job | None = None

    def start(self) -> Job | None:
        with self._lock:
            if self._running is not None and self._running.state == "running":
                return None
            job = Job(id=uuid.uuid4().hex[:12])
            self.jobs[job.id] = job
            self._running = job
        threading.Thread(target=self._run, args=(job,), daemon=True, name="reindex").start()
        return job

    def _run(self, job: Job) -> None:
        try:
            with self.models_lock:
                self.index.load_models(for_search=False)
            summary = self.index.refresh(events=_JobEvents(job))
            job.summary = summary.to_dict()
            job.state = "done"
        except PolylensError as exc:
            job.error = str(exc)
            job.state = "failed"
        except Exception as exc:  # noqa: BLE001 - a job must always end in a readable state
            job.error = f"internal error: {exc}"
            job.state = "failed"
