"""The optional second stage: a cross-encoder re-orders the first fused hits.

Only hits with text (passages, pages, OCR'd pictures) can be read by a cross-encoder;
the others keep their places, and the hits with text are re-ordered among the places
they held. Loading happens once per index and model; a reranker that cannot load (say,
offline without its weights) leaves results in fused order, with a warning saying why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from polylens.errors import ModelNotAvailableError, PolylensError
from polylens.search.fusion import Fused

PASSAGE_CHARS = 2000
"""Text given to the cross-encoder per hit (its own tokenizer truncates further)."""


class RerankerSlot:
    """The index's reranker, loaded on first use; a failure is remembered, not retried
    on every query."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._name: str | None = None
        self._model: Any = None
        self._error: str | None = None

    def get(
        self,
        registry: Any,
        name: str,
        *,
        device: str,
        batch_size: int,
        builders: Mapping[str, Callable[[], Any]] | None = None,
    ) -> tuple[Any, str | None]:
        """(the model or None, why it is unavailable or None); ``registry``: a
        :class:`polylens.encoders.registry.ModelRegistry`; ``builders``: rerankers that
        are not models of the registry, by name (``llm``: the ask endpoint)."""
        if name.strip().lower() in ("", "none", "off"):
            return None, None
        with self._lock:
            if name != self._name:
                self._name, self._model, self._error = name, None, None
                build = (builders or {}).get(name.strip().lower())
                try:
                    if build is not None:
                        self._model = build()
                    else:
                        self._model = registry.load_reranker(
                            name, device=device, batch_size=batch_size
                        )
                except ModelNotAvailableError as exc:
                    self._error = f"reranker {name} is unavailable ({exc.summary or exc})"
                except PolylensError as exc:
                    self._error = f"reranker {name} could not load: {exc}"
            return self._model, self._error


def rerank(
    fused: Sequence[Fused], texts: Mapping[str, str], query: str, model: Any, depth: int
) -> list[Fused]:
    """``fused`` with its first ``depth`` hits that have text re-ordered by ``model``."""
    head = list(fused[:depth])
    readable = [n for n, f in enumerate(head) if texts.get(f.id, "").strip()]
    if len(readable) < 2:
        return list(fused)
    scores = model.score(query, [texts[head[n].id][:PASSAGE_CHARS] for n in readable])
    order = sorted(range(len(readable)), key=lambda i: (-float(scores[i]), i))
    reordered = list(head)
    for place, i in zip(readable, order, strict=True):
        reordered[place] = head[readable[i]]
    return reordered + list(fused[depth:])


__all__ = ["RerankerSlot", "rerank"]
