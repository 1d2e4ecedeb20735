"""Keep model loading silent: a library call must not draw progress bars on stderr.

transformers 5 draws a "Loading weights" tqdm bar and huggingface_hub a download bar,
and transformers logs load reports through its own stderr handler. Both switches are
process-wide, so they are turned off only while a model loads and restored afterwards
(nested and concurrent loads share one count). Callers that want to show loading do so
through polylens' own progress events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0
_saved: dict[str, Any] = {}


def _silence() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    _saved["bars"] = hf_logging.is_progress_bar_enabled()
    _saved["verbosity"] = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _restore() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        return
    if _saved.pop("bars", False):
        hf_logging.enable_progress_bar()
    if "verbosity" in _saved:
        hf_logging.set_verbosity(_saved.pop("verbosity"))


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No progress bars or load reports from transformers / huggingface_hub inside."""
    global _depth
    with _lock:
        if _depth == 0:
            _silence()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()
