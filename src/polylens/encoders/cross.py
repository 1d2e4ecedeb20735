"""Cross-encoder rerankers through sentence-transformers (MS MARCO MiniLM, BGE reranker).

A cross-encoder reads the query and a passage together, which no vector index can, so it
judges relevance better and costs a forward pass per (query, passage): it re-orders the
first few dozen fused hits only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.device import pick_device
from polylens.errors import ModelError


class CrossEncoderReranker:
    def __init__(
        self, name: str, path: Path, *, device: str = "auto", batch_size: int = 32
    ) -> None:
        st = import_or_raise("sentence_transformers", package="sentence-transformers")
        self.name = name
        self.resolved = str(path)
        self.batch_size = batch_size
        self.device, _ = pick_device(device)
        try:
            self._model = st.CrossEncoder(str(path), device=self.device)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load reranker from {path}: {exc}") from exc
        self._lock = threading.Lock()

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance score per passage (higher is more relevant), in order."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            out = self._model.predict(
                [(query, p) for p in passages],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        scores = np.asarray(out, dtype=np.float32)
        return scores.reshape(len(passages), -1)[:, -1]  # one logit, or the last class's
