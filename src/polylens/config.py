"""Typed settings for an index, read from ``polylens.toml`` in the index directory.

Precedence: built-in defaults < the index's ``polylens.toml`` < explicit overrides
(CLI flags, keyword arguments of :func:`polylens.open`). Model names are *also*
recorded in the index metadata when it is first built; see :mod:`polylens.meta`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from polylens.errors import ConfigError

CONFIG_FILE = "polylens.toml"
FUSIONS = ("rrf", "normalised")
RUNTIMES = ("auto", "torch", "onnx")
PRECISIONS = ("fp32", "int8")
COMPOSED_QUERIES = ("sum", "pdv")
TOML_KEYS = {"with_": "with"}
"""Settings whose TOML key is a Python keyword."""


@dataclass(frozen=True)
class IndexConfig:
    image_model: str = "clip-b32"
    """Image-text model: alias, ``hf-hub:ORG/NAME``, a local HF directory, or ``none``."""
    text_model: str = "minilm"
    """Text embedder: alias, ``hf-hub:ORG/NAME``, a local sentence-transformers dir, or ``none``."""
    page_model: str = "none"
    """Late-interaction page model (``colqwen2``, ``colpali``, ``hf-hub:ORG/NAME``, a local
    directory, or ``none``): every PDF page and document-like picture kept as patch
    vectors, searched by MaxSim (``late`` representation; naming a model adds it)."""
    page_max_pixels: int = 602_112
    """Largest page a ColQwen2-family model reads, in pixels (768 patches of 28 x 28):
    more pixels, more vectors per page (bytes on disk, encoding time)."""
    page_token_pool: int = 1
    """Pool a page's vectors by this factor at ingest (hierarchical clustering): 2 halves
    the bytes at no published loss, 3 keeps about 97.8 %; 1 keeps every vector."""
    page_candidates: int = 200
    """Pages the first stage proposes for exact MaxSim per query."""
    page_min_text: int = 40
    """A picture is read as a document page when OCR found at least this many characters."""
    query_towers: bool = True
    """Export the text and image-text models' query towers to ONNX after a run, so a search
    embeds its query without torch (``encoders.onnx_queries``)."""
    with_: tuple[str, ...] = ()
    """Representations to add to the index (``with`` in polylens.toml, ``--with NAME``):
    a new one is filled in for the items already indexed."""
    without: tuple[str, ...] = ()
    """Representations to leave out (``--without NAME``): an existing one's data is dropped."""
    ocr: bool = True
    ocr_presence_side: int = 320
    """Long side of the small copy OCR's presence pass looks for text on (photos). Larger
    finds smaller text and costs more: signs with letters 2.5 % of a photo's short side
    were read in 22 of 60 photos at 320 and 51 of 60 at 480, for 23 vs 49 ms of detection
    a photo (``bench/ocr_presence.py``, results/ocr_presence.json)."""
    text_in_image_space: bool = True
    """Also embed text passages with the image-text model's text tower, so an image query
    can find the notes and captions that describe it."""
    device: str = "auto"
    encoder_runtime: str = "auto"
    """How the image model runs on a CPU: ``auto`` exports it to ONNX Runtime and uses that
    when a timed batch is faster on this machine (decided once, recorded beside the index),
    ``onnx`` always (when the export agrees with torch to cosine 0.9999), ``torch`` never.
    On a GPU it is torch."""
    precision: str = "fp32"
    """``int8``: the image model's ONNX graph quantised (about twice as fast on a CPU, its
    embeddings coarser). Opt-in: ``polylens eval DATA --precision int8`` shows what it
    changes in your own rankings first."""
    batch_size: int = 32
    """Items per encoder forward pass."""
    commit_every: int = 128
    """Items per store commit; a crash loses at most this much finished work."""
    workers: int = 2
    """Threads that read, decode, render and OCR ahead of the encoder."""
    passage_chars: int = 2000
    """Target passage length when splitting text files (about 500 tokens)."""
    text_vector_chars: int = 2000
    """Longest window, in characters, a text is embedded in. Windows follow the text
    model's own maximum sequence length in tokens (all-MiniLM-L6-v2 reads 256, about
    1,000 characters), overlapping by a quarter; texts longer than one window (PDF pages,
    OCR of dense scans) get several vectors and are scored by their best window."""
    max_image_pixels: int = 120_000_000
    """Larger images are refused as decompression bombs."""
    max_image_side: int = 1600
    """Decoded images are downscaled to this longest side before encoding and OCR."""
    pdf_render_dpi: int = 110
    pdf_ocr_dpi: int = 150
    max_pdf_pages: int = 5000
    speech_model: str = "none"
    """Transcribe videos' speech into their segments' text: a transformers speech
    recognition model (``whisper-tiny``, ``whisper-small``, ``hf-hub:ORG/NAME``, a local
    directory) or ``none``. Off by default: it costs far more than decoding."""
    video_max_segment: float = 20.0
    """Seconds: a longer shot of a video is split into segments this long."""
    video_max_segments: int = 1500
    """Segments one video may have; a longer video's segments are stretched (each at least
    its length / this) so the whole of it stays covered."""
    store: str = ""
    """Where the index's data lives (``--store URL``): empty, the embedded LanceDB store in
    the index directory; ``qdrant://HOST:PORT[?api_key_env=VAR&prefix=P&shards=N&
    replicas=N&timeout=S&https=true]``, a Qdrant server or cluster, searched server-side;
    ``qdrant+local:DIR`` or ``qdrant+memory:``, Qdrant's local mode (one process, brute
    force: small indexes and tests). The API key only ever comes from the environment."""
    ann_min_rows: int = 20_000
    """A vector collection gets ANN indexes (FAISS IVF in memory, LanceDB's own on disk)
    once it holds this many rows; below, search is exact."""
    ann_nprobe: int = 16
    """Inverted lists the in-memory ANN index scans per query: higher is more accurate."""
    rerank: str = "none"
    """A cross-encoder that re-orders the first hits of text queries (``ms-marco-minilm``,
    ``bge-reranker-base``, ``hf-hub:ORG/NAME``, a local directory), ``llm`` (a listwise
    reranker: the ``ask`` endpoint's model orders them), or ``none``."""
    rerank_depth: int = 30
    """How many of the first fused hits the reranker reads."""
    fusion: str = "rrf"
    """How representations' lists are fused: ``rrf`` (reciprocal rank) or ``normalised``
    (calibrated log-odds summed by weight); ``polylens eval DATA --tune`` picks one."""
    rrf_k: int = 60
    weight_image: float = 1.0
    weight_text: float = 1.0
    weight_bm25: float = 1.0
    weak_below: float = 0.1
    """Hits whose confidence is below this are weak; a query whose best hit is weak has
    no good match (the CLI and web page say so, ``ask`` abstains). At 0.1, 3 % of the
    Cranfield development queries have no good match, against 81-91 % of off-topic
    queries but only 42-66 % of ones that sound like the corpus (``bench/no_match.py``,
    results/no_match.json). Raise it to abstain more, at the cost of answerable queries."""
    image_query_weight: float = 0.5
    """For image + text queries: share of the image in the composed query vector."""
    composed_query: str = "sum"
    """How an image + text query is composed in the image-text space: ``sum`` (weighted by
    ``image_query_weight``) or ``pdv`` (the words as a direction added to the picture)."""
    pdv_strength: float = 1.0
    """With ``pdv``: how far the words' direction moves the picture's embedding."""

    llm_url: str = ""
    """``ask``'s model endpoint: the base URL of any OpenAI-compatible server (``.../v1``);
    also ``$POLYLENS_LLM_URL``. The API key comes only from the environment
    (``$POLYLENS_LLM_API_KEY``, else ``$OPENAI_API_KEY``), never from this file."""
    llm_model: str = ""
    """The model name sent to the endpoint; also ``$POLYLENS_LLM_MODEL``."""
    llm_vision: bool = True
    """Send pages and pictures as images; false: their text only (text-only models)."""
    llm_timeout: float = 60.0
    """Seconds to wait for the endpoint to connect or to send the next part of a reply."""
    llm_max_tokens: int = 1024
    """Longest answer, in tokens, asked of the model."""
    max_evidence: int = 6
    """Most items ``ask`` sends as evidence; fewer when the scores say fewer are good."""
    ask_rounds: int = 1
    """Searches the model may ask for before it must answer (1: no extra search)."""
    evidence_image_pixels: int = 1_000_000
    """Largest picture sent as evidence, in pixels (bigger ones are shrunk)."""
    evidence_image_bytes: int = 3_000_000
    """Byte budget of all evidence pictures of one request together, as JPEG."""
    evidence_text_chars: int = 4000
    """Longest text sent beside one evidence item."""

    def replace(self, **changes: Any) -> IndexConfig:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        clean = {k: v for k, v in changes.items() if v is not None}
        cfg = dataclasses.replace(self, **clean)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in (
            "batch_size",
            "commit_every",
            "workers",
            "passage_chars",
            "max_image_side",
            "rerank_depth",
            "llm_max_tokens",
            "max_evidence",
            "ask_rounds",
            "evidence_text_chars",
            "page_token_pool",
            "page_candidates",
            "video_max_segments",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 2.0 <= self.video_max_segment <= 600.0:
            raise ConfigError(
                f"video_max_segment must be 2-600 seconds, got {self.video_max_segment}"
            )
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith(
            "cuda:"
        ):
            raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        if self.page_max_pixels < 4 * 28 * 28:
            raise ConfigError("page_max_pixels must be at least 3136 (four 28 x 28 patches)")
        if self.max_evidence > 50 or self.ask_rounds > 10:
            raise ConfigError("max_evidence must be at most 50 and ask_rounds at most 10")
        if self.evidence_image_pixels < 4096 or self.evidence_image_bytes < 10_000:
            raise ConfigError(
                "evidence_image_pixels must be at least 4096 and evidence_image_bytes at least 10000"
            )
        if not 0.1 <= self.llm_timeout <= 3600:
            raise ConfigError("llm_timeout must be between 0.1 and 3600 seconds")
        if self.encoder_runtime not in RUNTIMES:
            raise ConfigError(
                f"encoder_runtime must be one of {', '.join(RUNTIMES)}, got {self.encoder_runtime!r}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.rrf_k < 1:
            raise ConfigError(f"rrf_k must be at least 1, got {self.rrf_k}")
        if not 0.0 <= self.weak_below <= 1.0:
            raise ConfigError("weak_below must be between 0 and 1")
        if self.composed_query not in COMPOSED_QUERIES:
            raise ConfigError(
                f"composed_query must be one of {', '.join(COMPOSED_QUERIES)}, "
                f"got {self.composed_query!r}"
            )
        if not 0.0 <= self.pdv_strength <= 10.0:
            raise ConfigError("pdv_strength must be between 0 and 10")
        if not 0.0 <= self.image_query_weight <= 1.0:
            raise ConfigError("image_query_weight must be between 0 and 1")
        from polylens.store.locations import parse_store

        parse_store(self.store)  # a malformed URL fails here, before anything is written
        if not 32 <= self.ocr_presence_side <= 4096:
            raise ConfigError(
                f"ocr_presence_side must be between 32 and 4096 pixels, got {self.ocr_presence_side}"
            )

    def to_toml(self) -> str:
        lines = ["# polylens index settings. Flags on the command line override these.", ""]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, tuple):
                text = "[" + ", ".join(f'"{v}"' for v in value) + "]"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{TOML_KEYS.get(f.name, f.name)} = {text}")
        return "\n".join(lines) + "\n"


def load_config(index_dir: Path, overrides: dict[str, Any] | None = None) -> IndexConfig:
    """Defaults, then ``index_dir/polylens.toml`` if present, then ``overrides``."""
    cfg = IndexConfig()
    path = index_dir / CONFIG_FILE
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        cfg = _apply(cfg, data, source=str(path))
    if overrides:
        cfg = _apply(cfg, overrides, source="arguments")
        given = {TOML_KEYS.get(k, k) for k, v in overrides.items() if v is not None}
        given |= {k for k in overrides if k in TOML_KEYS and overrides[k] is not None}
        # A flag wins over the file: --with NAME takes NAME out of the file's `without`.
        if "with_" in given or "with" in given:
            cfg = dataclasses.replace(
                cfg, without=tuple(n for n in cfg.without if n not in cfg.with_)
            )
        if "without" in given:
            cfg = dataclasses.replace(
                cfg, with_=tuple(n for n in cfg.with_ if n not in cfg.without)
            )
    cfg.validate()
    return cfg


def _apply(cfg: IndexConfig, data: dict[str, Any], *, source: str) -> IndexConfig:
    known = {f.name: f for f in fields(cfg)}
    changes: dict[str, Any] = {}
    field_of = {toml: name for name, toml in TOML_KEYS.items()}
    for key, value in data.items():
        if value is None:
            continue
        key = field_of.get(key, key)
        if isinstance(value, (list, tuple)) and isinstance(getattr(cfg, key, None), tuple):
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{source}: {key} must be a list of names")
            value = tuple(value)
        elif isinstance(value, str) and isinstance(getattr(cfg, key, None), tuple):
            value = (value,)
        if key not in known:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        expected = type(getattr(cfg, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{source}: {key} must be {expected.__name__}, got {type(value).__name__}"
            )
        changes[key] = value
    return dataclasses.replace(cfg, **changes)
