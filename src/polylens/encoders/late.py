"""Late-interaction page encoders (ColQwen2, ColPali) through transformers' own classes.

A page becomes one vector per image patch (plus the processor's few prompt tokens, which
the reference scoring keeps), a query one vector per token, all L2-normalised; the score
is MaxSim (:mod:`polylens.search.maxsim`). Padded rows are dropped by indexing with the
attention mask: ColQwen2 under SDPA attention leaves NaN in left-padded rows, which a
multiplication by the mask would keep.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.device import pick_device
from polylens.errors import ConfigError, ModelError

ARCHITECTURES = {"colqwen2": "ColQwen2ForRetrieval", "colpali": "ColPaliForRetrieval"}
MIN_PAGE_PIXELS = 4 * 28 * 28


@dataclass(frozen=True)
class PageVectors:
    """One page's vectors (fp16, ``n x dim``) and where its image patches sit in them:
    rows ``grid_start .. grid_start + rows * cols`` are the patch grid, row-major (for
    heat maps of which patches matched)."""

    vectors: np.ndarray
    grid_start: int
    rows: int
    cols: int


class LateInteractionEncoder:
    def __init__(
        self,
        name: str,
        path: Path,
        *,
        device: str = "auto",
        batch_size: int = 4,
        max_pixels: int = 602_112,
    ) -> None:
        torch = import_or_raise("torch")
        transformers = import_or_raise("transformers")
        self.name = name
        self.resolved = str(path)
        self.batch_size = max(1, batch_size)
        self.device, dtype = pick_device(device)
        if self.device.startswith("cuda") and torch.cuda.is_bf16_supported():
            dtype = torch.bfloat16  # Qwen2-VL and PaliGemma were trained in bf16; fp16 may overflow
        architecture = _architecture(path)
        self.kind = architecture
        try:
            model_class = getattr(transformers, ARCHITECTURES[architecture])
            self._model = model_class.from_pretrained(str(path), dtype=dtype).eval()
            self._model.to(self.device)
            self._processor = transformers.AutoProcessor.from_pretrained(str(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load page model from {path}: {exc}") from exc
        if architecture == "colqwen2":
            # every 28 x 28 block of the resized page is one vector: the budget bounds both
            # the encoder's cost and the bytes stored per page
            self._size = {
                "shortest_edge": MIN_PAGE_PIXELS,
                "longest_edge": max(MIN_PAGE_PIXELS, max_pixels),
            }
        else:
            self._size = None  # ColPali reads every page at one fixed resolution
        config = self._model.config
        self.dim = int(config.embedding_dim)
        vlm = getattr(config, "vlm_config", None)
        self._image_token = getattr(vlm, "image_token_id", None)
        if self._image_token is None:
            self._image_token = getattr(config, "image_token_id", None)
        self._torch = torch
        self._lock = threading.Lock()

    def embed_pages(self, images: Sequence[Any]) -> list[PageVectors]:
        out: list[PageVectors] = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            kwargs = {"size": self._size} if self._size else {}
            inputs = self._processor.process_images(batch, **kwargs)
            vectors, ids = self._run(inputs)
            grids = inputs.get("image_grid_thw")
            for i, (rows, tokens) in enumerate(zip(vectors, ids, strict=True)):
                out.append(self._page(rows, tokens, None if grids is None else grids[i]))
        return out

    def embed_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self._processor.process_queries(list(texts[start : start + self.batch_size]))
            vectors, _ = self._run(inputs)
            out.extend(v.astype(np.float32) for v in vectors)
        return out

    def _run(self, inputs: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        torch = self._torch
        with self._lock, torch.inference_mode():
            batch = inputs.to(self.device)
            embeddings = self._model(**batch).embeddings
        mask = inputs["attention_mask"].bool()
        vectors = [embeddings[i][mask[i]].float().cpu().numpy() for i in range(len(mask))]
        ids = [inputs["input_ids"][i][mask[i]].cpu().numpy() for i in range(len(mask))]
        return [v.astype(np.float16) for v in vectors], ids

    def _page(self, rows: np.ndarray, tokens: np.ndarray, grid: Any) -> PageVectors:
        where = np.flatnonzero(tokens == self._image_token) if self._image_token is not None else []
        start = int(where[0]) if len(where) else 0
        count = len(where)
        if grid is not None:  # Qwen2-VL: (t, h, w) patches, merged 2 x 2 into tokens
            _, h, w = (int(x) for x in grid)
            shape = (h // 2, w // 2)
        else:
            side = int(round(count**0.5))
            shape = (side, side)
        if shape[0] * shape[1] != count:
            shape = (1, count)
        return PageVectors(rows, start, shape[0], shape[1])


def _architecture(path: Path) -> str:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} holds no readable config.json: {exc}") from exc
    kind = str(config.get("model_type", ""))
    if kind not in ARCHITECTURES:
        raise ConfigError(
            f"{path} is a {kind or 'unknown'} model; a page model must be ColQwen2 or "
            "ColPali (e.g. vidore/colqwen2-v1.0-hf, vidore/colpali-v1.3-hf)"
        )
    return kind
