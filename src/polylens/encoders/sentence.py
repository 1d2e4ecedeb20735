"""Text embedders through sentence-transformers (MiniLM, BGE, E5, GTE, ...).

Models with query/document prompts in their config get them through
``encode_query``/``encode_document``; plain models are mean-pooled by the library.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.base import TextEncoder
from polylens.encoders.device import pick_device
from polylens.encoders.onnx_queries import QueryTower
from polylens.encoders.windows import token_windows
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
        self._reserved = 2 + self._prompt_tokens()
        self._lock = threading.Lock()
        self.dim = int(dim) if dim else int(self._embed_batch(["x"], query=True).shape[1])

    def windows(self, text: str, max_chars: int) -> list[str]:
        """Windows of the model's own maximum sequence length in tokens (less the special
        tokens and a document prompt, if the model has one)."""
        tokenizer = getattr(self._model, "tokenizer", None)
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            return super().windows(text, min(max_chars, 4 * self.max_seq_length))
        with self._lock:
            encoded = tokenizer(
                text,
                add_special_tokens=False,
                return_offsets_mapping=True,
                truncation=False,
                verbose=False,
            )
        return token_windows(
            text, encoded["offset_mapping"], self.max_seq_length - self._reserved, max_chars
        )

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

    def query_tower(self) -> QueryTower | None:
        """The query path for ONNX export (``encoders.onnx_queries``): token tensors through
        every module of the pipeline (transformer, pooling, normalisation) to one vector."""
        tokenizer = getattr(self._model, "tokenizer", None)
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            return None
        import torch

        names = ("input_ids", "attention_mask")
        if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
            names += ("token_type_ids",)
        prompts = getattr(self._model, "prompts", None) or {}

        class Tower(torch.nn.Module):
            def __init__(self, pipeline: Any) -> None:
                super().__init__()
                self.pipeline = pipeline

            def forward(self, *tensors: Any) -> Any:
                return self.pipeline(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

        return QueryTower(
            Tower(self._model),
            tokenizer,
            names,
            self.max_seq_length,
            prompt=prompts.get("query", ""),
        )

    def _prompt_tokens(self) -> int:
        """Tokens of the prompt put before each document, if the model has one."""
        prompts = getattr(self._model, "prompts", None) or {}
        prompt = prompts.get("document") or prompts.get("passage") or ""
        tokenizer = getattr(self._model, "tokenizer", None)
        if not prompt or tokenizer is None:
            return 0
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
