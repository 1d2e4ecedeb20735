"""Tiny, randomly initialised ColQwen2 and ColPali retrieval checkpoints for tests.

Why this exists: late-interaction page retrieval loads ``vidore/colqwen2-v1.0-hf`` /
``vidore/colpali-v1.3-hf`` through ``ColQwen2ForRetrieval`` + ``ColQwen2Processor`` and
``ColPaliForRetrieval`` + ``ColPaliProcessor``.  Tests cannot download those (no hub
access, and they are gigabytes), so, as ``_tiny_models`` does for CLIP and SigLIP, these
helpers build the *real* transformers architectures at toy sizes, with tokenizers trained
here on ``_tiny_models.CAPTION_CORPUS``, and save model and processor with
``save_pretrained``: the directory loads by path exactly like the hub checkpoint
(``from_pretrained(path)``, ``AutoProcessor.from_pretrained(path)``), without
``trust_remote_code``, torchvision (the processors use the PIL image processors) or network.

* ColQwen2: a Qwen2-VL backbone (2-layer vision tower with the real 14-px patches and 2x2
  merge, 2-layer Qwen2 text model with multimodal RoPE), a Qwen2 byte-level BPE tokenizer
  with Qwen's special tokens, and ``Qwen2VLImageProcessorPil`` with a small pixel budget
  (``COLQWEN2_MAX_PIXELS``): an 800x1000 page becomes 12x10 patches, 30 image tokens.
* ColPali: a PaliGemma backbone (2-layer SigLIP vision tower at ``COLPALI_IMAGE_SIZE`` px
  with ``COLPALI_PATCH_SIZE``-px patches, 2-layer Gemma), a Gemma-style BPE tokenizer with
  byte fallback, and ``SiglipImageProcessorPil`` at a fixed resolution: every page is
  ``COLPALI_IMAGE_TOKENS`` image tokens.

Both project to ``EMBEDDING_DIM``-dimensional, L2-normalised vectors (one per token).  The
embeddings are meaningless (random weights); shapes, dtypes, file layout and the
tokenising / pre-processing path are realistic.  Output is deterministic for a given
``seed`` and the global torch RNG is left untouched.
"""

from __future__ import annotations

import pathlib
import re
import string
from collections import Counter

import torch
from _tiny_models import CAPTION_CORPUS, _quiet_transformers, _word_counts, learn_merges
from tokenizers import pre_tokenizers

__all__ = [
    "COLPALI_IMAGE_SIZE",
    "COLPALI_IMAGE_TOKENS",
    "COLPALI_PATCH_SIZE",
    "COLQWEN2_MAX_PIXELS",
    "COLQWEN2_MIN_PIXELS",
    "EMBEDDING_DIM",
    "make_tiny_colpali",
    "make_tiny_colqwen2",
]

# Width of the retrieval head (``config.embedding_dim``; the real models use 128).
EMBEDDING_DIM = 32

# Qwen2-VL: 14-px patches merged 2x2, so sides are rounded to multiples of 28 px and every
# 28x28 px becomes one image token.  The real ColQwen2 allows 768 * 28 * 28 pixels.
COLQWEN2_MIN_PIXELS = 4 * 28 * 28
COLQWEN2_MAX_PIXELS = 32 * 28 * 28

# PaliGemma / SigLIP: every page is resized to a fixed square (448 px, 14-px patches and
# 1024 image tokens for the real ColPali).
COLPALI_IMAGE_SIZE = 56
COLPALI_PATCH_SIZE = 7
COLPALI_IMAGE_TOKENS = (COLPALI_IMAGE_SIZE // COLPALI_PATCH_SIZE) ** 2

# Short texts the processors wrap around pages and queries, so they tokenise into pieces.
_PROMPT_SENTENCES: tuple[str, ...] = (
    "Describe the image.",
    "Query: Question: What is the total amount on the invoice?",
    "Which page shows the chart of revenue by year?",
)


# ---------------------------------------------------------------------------
# ColQwen2 (Qwen2-VL backbone)
# ---------------------------------------------------------------------------

# Qwen2-VL's special tokens (the real vocabulary has them after 151643 BPE entries).
_QWEN_ENDOFTEXT = "<|endoftext|>"
_QWEN_SPECIALS: tuple[str, ...] = (
    _QWEN_ENDOFTEXT,
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def colqwen2_tokenizer():  # noqa: ANN201 - transformers is imported lazily
    """A ``Qwen2Tokenizer`` (Qwen's byte-level BPE pre-tokenisation) with merges learnt here.

    The vocabulary is the 256 byte symbols, one entry per merge, then Qwen2-VL's special
    tokens; ``<|endoftext|>`` pads (and is ColQwen2's query-augmentation token) and padding
    is on the left, as in ColQwen2.
    """
    from transformers import Qwen2Tokenizer

    backend = Qwen2Tokenizer()._tokenizer  # only its normaliser and pre-tokeniser
    counts: Counter[str] = _word_counts(backend)
    for sentence in _PROMPT_SENTENCES:
        normalized = backend.normalizer.normalize_str(sentence)
        counts.update(w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized))
    words: dict[tuple[str, ...], int] = {}
    for word, count in counts.items():
        words[tuple(word)] = words.get(tuple(word), 0) + count
    merges = learn_merges(words, num_merges=300)

    vocab: dict[str, int] = {}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    for token in _QWEN_SPECIALS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=_QWEN_ENDOFTEXT,
        eos_token=_QWEN_ENDOFTEXT,
        pad_token=_QWEN_ENDOFTEXT,
        extra_special_tokens=list(_QWEN_SPECIALS[1:]),
        model_max_length=32768,
        padding_side="left",
    )


def make_tiny_colqwen2(directory: pathlib.Path, *, seed: int = 0) -> pathlib.Path:
    """Save a tiny random ``ColQwen2ForRetrieval`` with its ``ColQwen2Processor``.

    Layout: ``config.json`` (``model_type`` ``"colqwen2"``, a ``qwen2_vl`` ``vlm_config``),
    ``model.safetensors``, ``tokenizer.json`` + ``tokenizer_config.json`` and
    ``processor_config.json`` (the image processor's settings inside; ``AutoProcessor``
    resolves ``Qwen2VLImageProcessorPil`` when torchvision is missing).  Returns
    ``directory`` (created if needed).
    """
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2VLConfig,
        Qwen2VLImageProcessorPil,
    )

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = colqwen2_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in _QWEN_SPECIALS}

    vlm_config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            # Multimodal RoPE: the (temporal, height, width) sections add up to head_dim / 2.
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]},
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids[_QWEN_ENDOFTEXT],
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "hidden_size": 64,  # the merger's output width = the text model's hidden size
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    config = ColQwen2Config(vlm_config=vlm_config, embedding_dim=EMBEDDING_DIM)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ColQwen2ForRetrieval(config).eval()

    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=COLQWEN2_MIN_PIXELS,
        max_pixels=COLQWEN2_MAX_PIXELS,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    processor = ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)

    with _quiet_transformers():
        model.save_pretrained(directory)
        processor.save_pretrained(directory)
    return directory


# ---------------------------------------------------------------------------
# ColPali (PaliGemma backbone)
# ---------------------------------------------------------------------------

_GEMMA_SPECIALS: tuple[str, ...] = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
_GEMMA_IMAGE = "<image>"


def colpali_tokenizer():  # noqa: ANN201 - transformers is imported lazily
    """A ``GemmaTokenizer`` (SentencePiece-style BPE: spaces become ``▁``, byte fallback).

    Ids 0-4 are ``<pad> <eos> <bos> <unk> <mask>`` as in Gemma, then the 256 byte-fallback
    tokens ``<0x00>``..``<0xFF>``, the printable ASCII characters, the pieces of the merges
    learnt here (never across a ``▁`` word start, like SentencePiece), and ``<image>``.
    ``ColPaliProcessor`` adds PaliGemma's 1024 ``<locNNNN>`` and 128 ``<segNNN>`` tokens
    itself, so the model's vocabulary must be sized after the processor is built.
    """
    from transformers import GemmaTokenizer

    backend = GemmaTokenizer()._tokenizer  # only its normaliser (" " -> "▁")
    assert backend.normalizer is not None
    counts: Counter[str] = Counter()
    for sentence in CAPTION_CORPUS + _PROMPT_SENTENCES:
        normalized = backend.normalizer.normalize_str(sentence)
        counts.update(piece for piece in re.split(r"(?=▁)", normalized) if piece)
    words = {tuple(word): count for word, count in counts.items()}
    merges = learn_merges(words, num_merges=300)

    vocab: dict[str, int] = {token: i for i, token in enumerate(_GEMMA_SPECIALS)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    printable = set(string.printable) - set(string.whitespace)
    for char in sorted(printable | {"▁", "\n"} | {c for word in words for c in word}):
        vocab.setdefault(char, len(vocab))
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab[_GEMMA_IMAGE] = len(vocab)
    return GemmaTokenizer(
        vocab=vocab,
        merges=merges,
        extra_special_tokens={"image_token": _GEMMA_IMAGE},
        model_max_length=2048,
        padding_side="left",
    )


def make_tiny_colpali(directory: pathlib.Path, *, seed: int = 0) -> pathlib.Path:
    """Save a tiny random ``ColPaliForRetrieval`` with its ``ColPaliProcessor``.

    Layout: ``config.json`` (``model_type`` ``"colpali"``, a ``paligemma`` ``vlm_config``),
    ``model.safetensors``, ``tokenizer.json`` + ``tokenizer_config.json`` and
    ``processor_config.json`` (``SiglipImageProcessorPil`` settings with
    ``image_seq_length``, which ``ColPaliProcessor`` requires).  Returns ``directory``
    (created if needed).
    """
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        PaliGemmaConfig,
        SiglipImageProcessorPil,
    )

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = colpali_tokenizer()
    image_processor = SiglipImageProcessorPil(
        size={"height": COLPALI_IMAGE_SIZE, "width": COLPALI_IMAGE_SIZE},
        image_seq_length=COLPALI_IMAGE_TOKENS,
    )
    # Adds PaliGemma's <loc>/<seg> tokens to the tokenizer: size the vocabulary after this.
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    vocab_size = len(tokenizer)

    vlm_config = PaliGemmaConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": COLPALI_IMAGE_SIZE,
            "patch_size": COLPALI_PATCH_SIZE,
            "vision_use_head": False,
        },
        text_config={
            "model_type": "gemma",
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 2048,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        image_token_index=processor.image_token_id,
        vocab_size=vocab_size,
        projection_dim=64,  # the projector maps vision features to the text hidden size
        hidden_size=64,
    )
    config = ColPaliConfig(vlm_config=vlm_config, embedding_dim=EMBEDDING_DIM)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ColPaliForRetrieval(config).eval()

    with _quiet_transformers():
        model.save_pretrained(directory)
        processor.save_pretrained(directory)
    return directory
