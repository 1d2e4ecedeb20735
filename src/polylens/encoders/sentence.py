"""Text embedders through sentence-transformers (MiniLM, BGE, E5, GTE, ...).

Models with query/document prompts in their config get them through
``encode_query``/``encode_document``; plain models are mean-pooled by the library.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.base import TextEncoder
from polylens.encoders.device import pick_device
from polylens.errors import ModelError


class SentenceTransformerText(TextEncoder):
    def __init__(
        self, name: str, path: Path, *, device: str = "auto", batch_size: int = 32
    ) -> None:
        st = import_or_raise("sentence_transformers", package="sentence-transformers")
        self.name = name
        self.resolved = str(path)
        self.batch_size = batch_size
        self.device, dtype = pick_device(device)
        try:
            self._model = st.SentenceTransformer(
                str(path), device=self.device, model_kwargs={"dtype": dtype}
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load text model from {path}: {exc}") from exc
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self.max_seq_length = int(getattr(self._model, "max_seq_length", 256) or 256)
        self._lock = threading.Lock()
        self.dim = int(dim) if dim else int(self._embed_batch(["x"], query=True).shape[1])

    def _embed_batch(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        encode = getattr(self._model, "encode_query" if query else "encode_document", None)
        encode = encode or self._model.encode
        with self._lock:
            out = encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)
