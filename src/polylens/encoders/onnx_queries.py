"""Query towers in ONNX Runtime, so a one-shot search does not import torch.

Importing torch, transformers and sentence-transformers costs seconds before a search can
embed its query, while the search itself takes milliseconds. So when a run has loaded a
text-embedding or image-text model, it also exports the part that embeds a query (the
tokenizer, and the text tower with its pooling) next to the index: an ONNX graph and the
fast tokenizer's ``tokenizer.json``. A later search embeds its query with ONNX Runtime
and ``tokenizers`` (both small native libraries) and loads the torch model only when it
needs more than that (an image query, indexing).

An export is kept only if it agrees with the model it came from: every probe query's
embedding within cosine 0.9999 of the torch one. The exporter is torch's own
(``torch.onnx.export``); the runtime is ``onnxruntime`` (already installed for OCR).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polylens.encoders import onnx_files
from polylens.encoders.base import QueryCache, normalise

log = logging.getLogger(__name__)

FORMAT = 1
MIN_COSINE = 0.9999
PROBES = (
    "a photo of a cat",
    "wiring diagram of the boiler in the basement",
    "Which ISO currency codes do the twelve Euro countries use?",
    "x",
    "the pressure distribution over a slender body of revolution at supersonic speed, "
    "measured and compared with linearised theory for several angles of attack " * 4,
)


@dataclass(frozen=True)
class QueryTower:
    """What a model gives to be exported: a torch module from token tensors to one
    embedding per text, its fast tokenizer, and how that tokenizer is called."""

    module: Any
    tokenizer: Any  # a transformers fast tokenizer
    inputs: tuple[str, ...]  # of input_ids, attention_mask, token_type_ids
    max_length: int
    pad_to_max: bool = False
    prompt: str = ""


@dataclass(frozen=True)
class TowerMeta:
    format: int
    model: str  # the resolved model the index records
    dim: int
    inputs: tuple[str, ...]
    max_length: int
    pad_to_max: bool
    prompt: str
    pad_id: int
    pad_token: str
    min_cosine: float


class OnnxQueryEncoder:
    """Embeds queries with an exported tower; anything else (images, documents, windows)
    goes to the full model, loaded on first such use."""

    def __init__(self, directory: Path, meta: TowerMeta, load_full: Callable[[], Any]) -> None:
        self.directory = directory
        self.meta = meta
        self.dim = meta.dim
        self.resolved = meta.model
        self._load_full = load_full
        self._full: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._query_cache = QueryCache()

    @property
    def name(self) -> str:
        return str(getattr(self._full, "name", self.meta.model))

    def _ready(self) -> None:
        if self._session is not None:
            return
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        tokenizer.enable_truncation(self.meta.max_length)
        length = self.meta.max_length if self.meta.pad_to_max else None
        tokenizer.enable_padding(
            pad_id=self.meta.pad_id, pad_token=self.meta.pad_token, length=length
        )
        # no spinning: the search that follows the query's embedding needs those cores
        # (bench/query.py --step e2e: p50 19.2 ms with spinning, at 1M items on 2 cores)
        session = onnx_files.session(self.directory / "model.onnx", spin=False)
        self._tokenizer, self._session = tokenizer, session

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._query_cache.embed(texts, self._embed, self.dim)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self._ready()
            encoded = self._tokenizer.encode_batch([self.meta.prompt + t for t in texts])
            feeds = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            out = self._session.run(None, {k: feeds[k] for k in self.meta.inputs})[0]
        return normalise(np.asarray(out, dtype=np.float32))

    def full(self) -> Any:
        with self._lock:
            if self._full is None:
                self._full = self._load_full()
        return self._full

    def __getattr__(self, attr: str) -> Any:
        # only reached for what this class does not have: the full model's own methods
        if attr.startswith("__") or attr in ("_full", "_load_full", "_lock"):
            raise AttributeError(attr)
        return getattr(self.full(), attr)


def read_meta(directory: Path) -> TowerMeta | None:
    try:
        raw = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        meta = TowerMeta(**{**raw, "inputs": tuple(raw["inputs"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if meta.format != FORMAT or not (directory / "model.onnx").is_file():
        return None
    return meta


def export(model: Any, directory: Path, resolved: str) -> bool:
    """Export ``model``'s query tower to ``directory`` (replacing what is there) if it has
    one and the export agrees with it; False (and nothing written) otherwise."""
    tower_of = getattr(model, "query_tower", None)
    tower: QueryTower | None = tower_of() if tower_of is not None else None
    if tower is None:
        return False
    try:
        with onnx_files.staging(directory) as work:
            example = tower.tokenizer(
                ["a query", "another query, longer"],
                padding="max_length" if tower.pad_to_max else True,
                truncation=True,
                max_length=tower.max_length,
                return_tensors="pt",
            )
            args = tuple(example[name] for name in tower.inputs)
            dynamic = {name: {0: "batch", 1: "tokens"} for name in tower.inputs}
            onnx_files.export_graph(tower.module, args, work / "model.onnx", tower.inputs, dynamic)
            tower.tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
            reference = np.asarray(model.embed_queries(list(PROBES)), dtype=np.float32)
            meta = TowerMeta(
                FORMAT,
                resolved,
                int(reference.shape[1]),
                tower.inputs,
                tower.max_length,
                tower.pad_to_max,
                tower.prompt,
                int(tower.tokenizer.pad_token_id or 0),
                str(tower.tokenizer.pad_token or ""),
                0.0,
            )
            onnx = OnnxQueryEncoder(work, meta, lambda: model)
            # as a batch (padded) and one at a time (as a search asks)
            batch = onnx._embed(list(PROBES))
            single = np.concatenate([onnx._embed([probe]) for probe in PROBES])
            reference = normalise(reference)
            cosine = float(min(np.min(np.sum(reference * e, axis=1)) for e in (batch, single)))
            if cosine < MIN_COSINE:
                log.info("query tower of %s not kept: cosine %.6f to the model", resolved, cosine)
                return False
            meta = TowerMeta(**{**asdict(meta), "min_cosine": round(cosine, 7)})
            (work / "meta.json").write_text(json.dumps(asdict(meta), indent=1), encoding="utf-8")
            onnx_files.swap_in(work, directory)
            return True
    except Exception as exc:  # noqa: BLE001 - an export that fails only costs speed
        log.info("query tower of %s not exported: %s", resolved, exc)
        return False
