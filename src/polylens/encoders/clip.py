"""CLIP-family image-text models (CLIP, SigLIP, SigLIP 2, ...) through transformers.

One class serves every architecture that exposes ``get_image_features`` and
``get_text_features``; the differences that matter for retrieval (SigLIP's text tower
was trained on max-length padding) are read from the model config, not from the name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.base import ImageTextEncoder
from polylens.encoders.device import pick_device
from polylens.errors import ModelError

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

_MAX_LENGTH_PADDED = ("siglip", "siglip2")


def _features(output: Any, torch: Any, *attrs: str) -> Any:
    """transformers 4 returns a tensor, 5 may return a ModelOutput: accept both."""
    if isinstance(output, torch.Tensor):
        return output
    for attr in attrs:
        value = getattr(output, attr, None)
        if value is not None:
            return value
    raise ModelError(f"unexpected model output type {type(output).__name__}")


class TransformersImageText(ImageTextEncoder):
    def __init__(
        self, name: str, path: Path, *, device: str = "auto", batch_size: int = 32
    ) -> None:
        transformers = import_or_raise("transformers")
        self._torch = import_or_raise("torch")
        self.name = name
        self.resolved = str(path)
        self.batch_size = batch_size
        self.device, dtype = pick_device(device)
        try:
            config = transformers.AutoConfig.from_pretrained(path)
            self._model = transformers.AutoModel.from_pretrained(path, dtype=dtype)
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            self._image_processor = transformers.AutoImageProcessor.from_pretrained(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot load image-text model from {path}: {exc}") from exc
        if not (
            hasattr(self._model, "get_image_features") and hasattr(self._model, "get_text_features")
        ):
            raise ModelError(
                f"{name!r} ({config.model_type}) is not an image-text model: it has no "
                "get_image_features/get_text_features"
            )
        self._model.eval().to(self.device)
        self.model_type = str(config.model_type)
        text_config = getattr(config, "text_config", None)
        self._max_length = int(getattr(text_config, "max_position_embeddings", 77) or 77)
        self._pad_to_max = self.model_type in _MAX_LENGTH_PADDED
        self._dtype = dtype
        # One forward pass at a time per model: torch already uses every core for one.
        self._lock = threading.Lock()
        self.dim = int(self._embed_text_batch(["a photo"]).shape[1])

    def _embed_image_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        inputs = self._image_processor(
            images=[im.convert("RGB") for im in images], return_tensors="pt"
        )
        pixels = inputs["pixel_values"].to(self.device, dtype=self._dtype)
        with self._lock, torch.inference_mode():
            out = self._model.get_image_features(pixel_values=pixels)
        feats = _features(out, torch, "image_embeds", "pooler_output")
        return feats.float().cpu().numpy()

    def _embed_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        tokens = self._tokenizer(
            list(texts),
            padding="max_length" if self._pad_to_max else True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        accepted = {"input_ids", "attention_mask", "position_ids"}
        if self._pad_to_max:
            # SigLIP's text tower was trained without an attention mask on padded input.
            accepted = {"input_ids"}
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in accepted}
        with self._lock, torch.inference_mode():
            out = self._model.get_text_features(**tokens)
        feats = _features(out, torch, "text_embeds", "pooler_output")
        return feats.float().cpu().numpy()
