"""Tiny, randomly initialised CLIP and SigLIP checkpoints for tests.

Why this exists: the product loads models from Hugging Face-format directories
with ``AutoConfig`` / ``AutoModel`` / ``AutoTokenizer`` / ``AutoImageProcessor``.
Tests cannot download real checkpoints (no hub access, and they are hundreds of
MB), and mocking the loader would skip the code path users actually hit.  These
helpers build the *real* transformers architectures at toy sizes, train a small
tokenizer in-process on a built-in caption corpus, and save everything with
``save_pretrained`` so the result looks like a hub checkpoint on disk.

The embeddings are meaningless (random weights); only shapes, dtypes, file
layout and the loading/tokenising/pre-processing path are realistic.  Output is
deterministic for a given ``seed`` and the global torch RNG is left untouched.
"""

from __future__ import annotations

import contextlib
import math
import pathlib
import string
from collections import Counter
from collections.abc import Iterator

import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, Unigram

__all__ = ["CAPTION_CORPUS", "make_tiny_clip", "make_tiny_siglip"]

# ---------------------------------------------------------------------------
# Built-in corpus: a few hundred short English captions.
# ---------------------------------------------------------------------------

_SUBJECTS: tuple[str, ...] = tuple(
    """
    cat dog bird horse cow sheep fish rabbit mouse lion tiger bear elephant giraffe
    zebra monkey duck owl fox wolf car bus truck bicycle motorcycle train boat airplane
    ship tractor house bridge tower church castle street road city village garden tree
    flower forest mountain river lake beach ocean desert field man woman child boy girl
    person family crowd player chef apple banana orange pizza cake sandwich bread coffee
    soup salad chair table sofa bed lamp window door clock book phone computer keyboard
    camera guitar piano ball kite umbrella hat shoe
    """.split()
)

_ADJECTIVES: tuple[str, ...] = tuple(
    """
    red blue green yellow black white brown small large old young happy sleepy wet shiny
    wooden tiny huge bright dark
    """.split()
)

_SCENES: tuple[str, ...] = (
    "on the grass",
    "in the snow",
    "at night",
    "in the rain",
    "on a sunny day",
    "near the water",
    "in a kitchen",
    "on a table",
    "in the park",
    "under a tree",
    "next to a window",
    "on the street",
    "in the city",
    "at the beach",
    "in a field",
)

_TEMPLATES: tuple[str, ...] = (
    "a photo of a {s}",
    "a picture of a {a} {s}",
    "a {a} {s} {p}",
    "an image of the {s}",
    "a close-up photo of a {s}",
    "there is a {a} {s} {p}",
    "two {s}s {p}",
    "a blurry photo of the {a} {s}",
)

_EXTRA_SENTENCES: tuple[str, ...] = (
    "the quick brown fox jumps over the lazy dog",
    "a group of people standing together and smiling",
    "someone is holding a cup of hot coffee in the morning",
    "a dog is running after a ball in the park",
    "a cat is sleeping on the sofa next to the window",
    "an aerial view of a city with tall buildings",
    "a bowl of fresh fruit on a wooden kitchen table",
    "children are playing football in a green field",
    "a sailboat floating on a calm blue lake at sunset",
    "snow covered mountains under a clear sky",
    "a diagram, a chart, a screenshot, a drawing, a painting, a sketch",
    "what is in this image? it's a photo; they're outside, we've seen it, I'm sure",
    "one two three four five six seven eight nine ten 0 1 2 3 4 5 6 7 8 9",
    "search for images of cats and dogs",
    "find me a picture with a red car",
    "multimodal search engine test query",
)


def _corpus() -> list[str]:
    sentences: list[str] = list(_EXTRA_SENTENCES)
    n_adj = len(_ADJECTIVES)
    n_scn = len(_SCENES)
    for i, subject in enumerate(_SUBJECTS):
        for j, template in enumerate(_TEMPLATES):
            if (i + j) % 3:  # keep the corpus at a few hundred sentences
                continue
            sentences.append(
                template.format(
                    s=subject,
                    a=_ADJECTIVES[(i * 7 + j) % n_adj],
                    p=_SCENES[(i * 5 + j * 3) % n_scn],
                )
            )
    sentences.extend(_SUBJECTS)  # bare single-word queries ("dog")
    return sentences


CAPTION_CORPUS: tuple[str, ...] = tuple(_corpus())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and warnings while saving; restore after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------
# CLIP
# ---------------------------------------------------------------------------

_CLIP_BOS = "<|startoftext|>"
_CLIP_EOS = "<|endoftext|>"
# Same pre-tokenisation regex as transformers' CLIPTokenizer / OpenAI CLIP.
_CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
    r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


def _clip_backend() -> Tokenizer:
    """An empty CLIP-style byte-level BPE ``Tokenizer`` (normaliser + pre-tokeniser only)."""
    model = BPE(unk_token=_CLIP_EOS, continuing_subword_prefix="", end_of_word_suffix="</w>")
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    return tok


def _word_counts(tok: Tokenizer) -> Counter[str]:
    """Normalise + pre-tokenise the corpus with ``tok``; count the resulting words."""
    assert tok.normalizer is not None and tok.pre_tokenizer is not None
    counts: Counter[str] = Counter()
    for sentence in CAPTION_CORPUS:
        normalized = tok.normalizer.normalize_str(sentence)
        counts.update(word for word, _ in tok.pre_tokenizer.pre_tokenize_str(normalized))
    return counts


def learn_merges(words: dict[tuple[str, ...], int], num_merges: int) -> list[tuple[str, str]]:
    """BPE merges learnt from word counts (words as symbol tuples), most frequent pair
    first, ties to the smallest pair: deterministic, unlike ``BpeTrainer``."""
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols[:-1], symbols[1:], strict=True):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        left, right = best
        merged: dict[tuple[str, ...], int] = {}
        for symbols, count in words.items():
            out: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                    out.append(left + right)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    return merges


def _train_clip_bpe(num_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn CLIP-style BPE merges on the corpus and return ``(vocab, merges)``.

    A tiny pure-Python trainer is used instead of ``tokenizers.trainers.BpeTrainer``
    because the latter breaks ties between equally frequent pairs in hash order,
    so its output differs from run to run.  Ties here go to the smallest pair.

    The vocabulary is laid out like OpenAI CLIP's: the 256 byte symbols, the
    256 byte symbols with the ``</w>`` end-of-word suffix, one entry per merge,
    then ``<|startoftext|>`` and ``<|endoftext|>`` as the last two ids.
    """
    words: dict[tuple[str, ...], int] = {}
    for word, count in _word_counts(_clip_backend()).items():
        symbols = (*word[:-1], word[-1] + "</w>")
        words[symbols] = words.get(symbols, 0) + count

    merges = learn_merges(words, num_merges)

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for symbol in alphabet + [c + "</w>" for c in alphabet]:
        vocab[symbol] = len(vocab)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab[_CLIP_BOS] = len(vocab)
    vocab[_CLIP_EOS] = len(vocab)
    return vocab, merges


def clip_tokenizer():  # noqa: ANN201 - transformers is imported lazily
    """A CLIP BPE tokenizer trained here on a small corpus (the real one needs the hub)."""
    from transformers import CLIPTokenizer

    vocab, merges = _train_clip_bpe(num_merges=300)
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=_CLIP_EOS,
        bos_token=_CLIP_BOS,
        eos_token=_CLIP_EOS,
        pad_token=_CLIP_EOS,
        model_max_length=77,
    )


def make_tiny_clip(
    directory: pathlib.Path,
    *,
    projection_dim: int = 32,
    image_size: int = 32,
    seed: int = 0,
) -> pathlib.Path:
    """Save a tiny random ``CLIPModel`` + CLIP BPE tokenizer + image processor.

    Returns ``directory`` (created if needed).  ``model_type`` is ``"clip"``;
    the text tower has ``max_position_embeddings == 77`` like real CLIP.
    """
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = clip_tokenizer()

    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "projection_dim": projection_dim,
            # CLIP pools the hidden state at the first eos token; these ids must
            # match the tokenizer (and eos must not be 2, the legacy argmax path).
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
            "projection_dim": projection_dim,
        },
        projection_dim=projection_dim,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )

    # Hub-style layout (config.json, model.safetensors, tokenizer*.json,
    # preprocessor_config.json); AutoProcessor resolves CLIPProcessor from it.
    with _quiet_transformers():
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        image_processor.save_pretrained(directory)
    return directory


# ---------------------------------------------------------------------------
# SigLIP
# ---------------------------------------------------------------------------

_SIGLIP_PAD = "<pad>"
_SIGLIP_EOS = "</s>"
_SIGLIP_UNK = "<unk>"


def _build_siglip_unigram(max_pieces: int) -> Tokenizer:
    """Build a SentencePiece-style (Unigram + Metaspace) tokenizer from the corpus.

    Mirrors SigLIP's tokenizer: ids 0/1/2 are ``<pad>``/``</s>``/``<unk>``,
    text is lower-cased with punctuation stripped, and ``</s>`` is appended.
    The piece inventory is chosen deterministically (``UnigramTrainer`` is not
    reproducible across runs): every single character (a-z, 0-9 always), every
    ``▁``-prefixed corpus word, then the most frequent substrings of those
    words; each piece is scored by its log relative frequency.
    """
    tok = Tokenizer(Unigram())
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Lowercase(),
            normalizers.Replace(Regex(r"[^\w\s]"), ""),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Strip(),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")

    words = _word_counts(tok)
    substrings: Counter[str] = Counter()
    for word, count in words.items():
        for i in range(len(word)):
            for j in range(i + 1, min(len(word), i + 12) + 1):
                substrings[word[i:j]] += count
    chars = {s for s in substrings if len(s) == 1}
    chars |= set(string.ascii_lowercase + string.digits + "▁")
    whole = {w for w in words if len(w) > 1}
    multi = sorted(
        (s for s, c in substrings.items() if len(s) > 1 and c >= 2 and s not in whole),
        key=lambda s: (-substrings[s] * len(s), s),
    )[: max(0, max_pieces - len(chars) - len(whole))]
    pieces = sorted(chars) + sorted(whole | set(multi))
    total = sum(max(substrings[p], 1) for p in pieces)
    vocab = [(_SIGLIP_PAD, 0.0), (_SIGLIP_EOS, 0.0), (_SIGLIP_UNK, 0.0)]
    vocab += [(p, round(math.log(max(substrings[p], 1) / total), 6)) for p in pieces]
    tok.model = Unigram(vocab, unk_id=2, byte_fallback=False)
    tok.add_special_tokens([_SIGLIP_PAD, _SIGLIP_EOS, _SIGLIP_UNK])
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {_SIGLIP_EOS}",
        pair=f"$A {_SIGLIP_EOS} $B {_SIGLIP_EOS}",
        special_tokens=[(_SIGLIP_EOS, 1)],
    )
    return tok


def make_tiny_siglip(
    directory: pathlib.Path,
    *,
    image_size: int = 32,
    seed: int = 0,
) -> pathlib.Path:
    """Save a tiny random ``SiglipModel`` + Unigram tokenizer + image processor.

    Returns ``directory`` (created if needed).  ``model_type`` is ``"siglip"``;
    the text tower has ``max_position_embeddings == 64`` like real SigLIP.
    The tokenizer is a fast ``tokenizer.json`` (class ``TokenizersBackend``,
    a.k.a. ``PreTrainedTokenizerFast``) because real SigLIP's SentencePiece
    tokenizer needs the optional ``sentencepiece`` package.
    """
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
    )

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_build_siglip_unigram(max_pieces=600),
        pad_token=_SIGLIP_EOS,  # real SigLIP pads with </s> (id 1)
        eos_token=_SIGLIP_EOS,
        unk_token=_SIGLIP_UNK,
        model_max_length=64,
        padding_side="right",
    )

    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": None,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiglipModel(config).eval()

    image_processor = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})

    with _quiet_transformers():
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        image_processor.save_pretrained(directory)
    return directory


# ---------------------------------------------------------------------------
# Cross-encoder (BERT with one relevance logit, as ms-marco-MiniLM is)
# ---------------------------------------------------------------------------


def make_tiny_cross_encoder(directory: pathlib.Path, *, seed: int = 0) -> pathlib.Path:
    """Save a tiny random ``BertForSequenceClassification`` (one label) with a WordPiece
    tokenizer trained here: the layout sentence-transformers' ``CrossEncoder`` loads."""
    from tokenizers.models import WordPiece
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(
        list(CAPTION_CORPUS), WordPieceTrainer(vocab_size=400, special_tokens=specials)
    )
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = BertTokenizerFast(tokenizer_object=backend, model_max_length=128)
    config = BertConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=backend.token_to_id("[PAD]"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config).eval()
    with _quiet_transformers():
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return directory
