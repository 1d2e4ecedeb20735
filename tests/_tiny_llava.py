"""A tiny, randomly initialised LLaVA checkpoint for end-to-end tests of ``ask``.

Why this exists: the retrieval-augmented ``ask`` feature talks to a vision chat
model through an OpenAI-compatible HTTP API.  Tests cannot download a real VLM
(no hub access, and real ones are gigabytes), and a hand-written fake server
would only echo our own idea of the protocol.  This module builds the *real*
``LlavaForConditionalGeneration`` architecture (a 2-layer CLIP vision tower, a
projector and a 2-layer Llama) at toy sizes, with a byte-level BPE tokenizer
trained here on the caption corpus of ``_tiny_models`` and a chat template that
renders OpenAI-style messages with image and text parts, and saves it all with
``save_pretrained``.  ``transformers serve DIR`` then loads it from the local
path and answers ``/v1/chat/completions`` like a real server (streaming,
data-URL images, usage), which is what ``scripts/llm_test_server.sh`` does.

The answers are meaningless (random weights) but deterministic for a given
``seed``: greedy decoding, and the saved ``generation_config.json`` makes every
answer exactly ``ANSWER_TOKENS`` printable-ASCII tokens followed by ``</s>``
(``min_new_tokens`` holds end-of-sequence back, then a large bias on it ends
the answer).  That matters because ``transformers serve`` raises any
``max_new_tokens`` below 1024 to 1024 unless the request sends ``max_tokens``
or ``max_completion_tokens``; without the forced stop, a request that sends
neither would generate 1024 tokens.  The global torch RNG is left untouched.
"""

from __future__ import annotations

import pathlib
from collections import Counter

import torch
from _tiny_models import _quiet_transformers, _word_counts, learn_merges
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE

__all__ = ["ANSWER_TOKENS", "CHAT_TEMPLATE", "IMAGE_TOKENS", "make_tiny_llava"]

BOS = "<s>"
EOS = "</s>"
PAD = "<pad>"
IMAGE = "<image>"

IMAGE_SIZE = 32
PATCH_SIZE = 8
# CLIP adds a CLS embedding to the (32 / 8) ** 2 = 16 patch embeddings; the
# "default" feature strategy drops it again, so each image is 16 <image> tokens.
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2
# Every answer is this many tokens long (then </s>), unless the request caps it lower.
ANSWER_TOKENS = 12

# Renders what a processor's apply_chat_template receives: OpenAI messages whose
# content is a string or a list of parts; ``transformers serve`` (and the
# processor itself) turn OpenAI ``image_url`` parts into ``{"type": "image"}``.
# Layout follows llava-1.5: "USER: <image>\ntext\nASSISTANT:".  ``tools`` is ignored.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- message['role'] | upper ~ ': ' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}"
    "{{- '<image>\n' -}}"
    "{%- elif part['type'] in ['text', 'input_text', 'output_text'] -%}"
    "{{- part['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{{- eos_token -}}{%- endif -%}"
    "{{- '\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)

# Chat-shaped text on top of the captions, so prompts tokenise into sensible pieces.
_CHAT_SENTENCES: tuple[str, ...] = (
    "USER: ASSISTANT: SYSTEM:",
    "You are a helpful assistant. Answer the question using the retrieved images and passages.",
    "Answer briefly and cite the sources by their number, like [1] or [2].",
    "What is in this image? Describe the photo.",
    "Which document mentions the invoice total? The total is 42.50 EUR.",
    "I don't know; the context does not say.",
    "Source: page 3 of report.pdf, scan.png, notes.txt",
)


def _train_byte_bpe(num_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn GPT-2-style byte-level BPE merges, deterministically, on ``_tiny_models``'
    ``CAPTION_CORPUS`` (counted by its ``_word_counts``) plus ``_CHAT_SENTENCES``.

    ``tokenizers.trainers.BpeTrainer`` breaks ties in hash order (its output
    varies between runs), so this small trainer is used instead; ties go to the
    smallest pair.  The vocabulary is the 256 byte symbols, then one entry per merge.
    """
    backend = Tokenizer(BPE())
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    counts: Counter[str] = _word_counts(backend)
    for sentence in _CHAT_SENTENCES:
        counts.update(w for w, _ in backend.pre_tokenizer.pre_tokenize_str(sentence))

    words: dict[tuple[str, ...], int] = {}
    for word, count in counts.items():
        words[tuple(word)] = words.get(tuple(word), 0) + count

    merges = learn_merges(words, num_merges)

    vocab: dict[str, int] = {}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return vocab, merges


def llava_tokenizer():  # noqa: ANN201 - transformers is imported lazily
    """A byte-level BPE tokenizer (Llama-3 / GPT-2 style) with ``<s> </s> <pad> <image>``."""
    from transformers import PreTrainedTokenizerFast

    vocab, merges = _train_byte_bpe(num_merges=400)
    backend = Tokenizer(BPE(vocab=vocab, merges=merges))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([BOS, EOS, PAD, IMAGE])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens={"image_token": IMAGE},
        model_max_length=2048,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
    )


def _unprintable_token_ids(tokenizer) -> list[int]:  # noqa: ANN001
    """Ids of tokens that must never be generated: the specials other than </s>, and
    the byte symbols outside printable ASCII (a lone UTF-8 byte decodes to nothing)."""
    byte_decoder = {c: b for b, c in _bytes_to_unicode().items()}
    ids = [tokenizer.convert_tokens_to_ids(t) for t in (BOS, PAD, IMAGE)]
    for token, token_id in tokenizer.get_vocab().items():
        if len(token) == 1 and token in byte_decoder:
            byte = byte_decoder[token]
            if not (32 <= byte < 127):
                ids.append(token_id)
    return sorted(set(ids))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what the ByteLevel pre-tokenizer uses)."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def make_tiny_llava(directory: pathlib.Path, *, seed: int = 0) -> pathlib.Path:
    """Save a tiny random ``LlavaForConditionalGeneration`` with its processor.

    The layout is a hub checkpoint's: ``config.json``, ``model.safetensors``,
    ``generation_config.json``, ``tokenizer.json`` + ``tokenizer_config.json``,
    ``processor_config.json``, ``chat_template.jinja``.  ``AutoProcessor`` resolves
    ``LlavaProcessor`` (with ``LlavaImageProcessorPil``, so torchvision is not
    needed) and ``AutoModelForImageTextToText`` the model.  Returns ``directory``
    (created if needed).
    """
    from transformers import (
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaImageProcessorPil,
        LlavaProcessor,
    )

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = llava_tokenizer()
    bos_id, eos_id, pad_id = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    image_id = tokenizer.convert_tokens_to_ids(IMAGE)

    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=32,
    )
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=image_id,
        image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config).eval()

    model.generation_config = GenerationConfig(
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        do_sample=False,
        max_new_tokens=24,
        # Exactly ANSWER_TOKENS tokens, then </s>: end-of-sequence is masked until
        # then and hugely favoured afterwards (see the module docstring).
        min_new_tokens=ANSWER_TOKENS,
        sequence_bias=[[[eos_id], 100.0]],
        suppress_tokens=_unprintable_token_ids(tokenizer),
    )

    image_processor = LlavaImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_pad=False,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE,
        # CLIP's CLS token: (32 // 8) ** 2 + 1 - 1 ("default" drops it) = 16 tokens.
        num_additional_image_tokens=1,
    )

    with _quiet_transformers():
        model.save_pretrained(directory)
        processor.save_pretrained(directory)
    return directory
