"""Tiny, randomly initialised speech-recognition checkpoints and a speech-like test file.

The product loads speech models through ``transformers.pipeline`` from Hugging Face-format
directories; tests cannot download real ones, and mocking the pipeline would skip the path
users hit. These helpers build the real architectures (Wav2Vec2 CTC, Whisper) at toy sizes
with real tokenizers, feature extractors and, for Whisper, the generation config its
timestamp decoding needs, saved with ``save_pretrained`` like a hub checkpoint. Their text
is random; shapes, file layout, timestamps and the loading path are real. Each build takes
well under a second and leaves the global torch RNG untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from tokenizers import pre_tokenizers
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizer,
)

from polylens.encoders.quiet import quiet_loading

__all__ = [
    "RATE",
    "SILENT",
    "make_tiny_wav2vec2",
    "make_tiny_whisper",
    "speech_file",
    "speech_signal",
]

# Whisper's special tokens, in its order: <|notimestamps|> must be the last special one,
# as the 1501 timestamp tokens <|0.00|> ... <|30.00|> are numbered from it.
_WHISPER_SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|de|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]


def _seeded_model(build: Callable[[], torch.nn.Module], seed: int) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def make_tiny_wav2vec2(dst: Path, seed: int = 0) -> Path:
    """A Wav2Vec2ForCTC of two 32-wide layers over a letters vocabulary (``|`` between
    words), whose conv front end maps 320 samples (20 ms at 16 kHz) to one frame."""
    dst.mkdir(parents=True, exist_ok=True)
    letters = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
    (dst / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(dst / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    )
    config = Wav2Vec2Config(
        vocab_size=len(letters),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16),
        conv_stride=(5, 8, 8),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    model = _seeded_model(lambda: Wav2Vec2ForCTC(config), seed)
    with quiet_loading():
        model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    features.save_pretrained(dst)
    return dst


def make_tiny_whisper(dst: Path, seed: int = 0, max_length: int = 40) -> Path:
    """A multilingual WhisperForConditionalGeneration (one 32-wide layer each side, two
    languages) with a byte-level BPE tokenizer holding Whisper's special and timestamp
    tokens, and the generation config that language detection and timestamps read."""
    dst.mkdir(parents=True, exist_ok=True)
    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(byte_chars)}
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": _WHISPER_SPECIALS[1:]})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in _WHISPER_SPECIALS}
    eos = ids["<|endoftext|>"]
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,  # 30 s of 10 ms mel frames, halved by the conv stem
        max_target_positions=max_length,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        pad_token_id=eos,
        bos_token_id=eos,
        eos_token_id=eos,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    model = _seeded_model(lambda: WhisperForConditionalGeneration(config), seed)
    generation = model.generation_config
    generation.decoder_start_token_id = ids["<|startoftranscript|>"]
    generation.no_timestamps_token_id = ids["<|notimestamps|>"]
    generation.is_multilingual = True
    generation.lang_to_id = {lang: ids[lang] for lang in ("<|en|>", "<|de|>")}
    generation.task_to_id = {task: ids[f"<|{task}|>"] for task in ("translate", "transcribe")}
    generation.max_length = max_length
    generation.max_initial_timestamp_index = 50
    generation.begin_suppress_tokens = [vocab["Ġ"], eos]  # no leading space or empty text
    generation.suppress_tokens = []
    generation.alignment_heads = [[0, 0]]
    # A config "from the model config" is rebuilt from config.json on load, losing the above.
    generation._from_model_config = False
    with quiet_loading():
        model.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(dst)
    return dst


# Where speech_signal() is silent (seconds): a window inside transcribes to nothing.
SILENT = (50.0, 56.0)
RATE = 22050  # not 16 kHz, so decoding must resample


def speech_signal(seconds: float, seed: int = 7) -> np.ndarray:
    """Mono float32 at :data:`RATE`: "syllables" (noise bursts of 0.15-0.5 s) and pauses,
    silent during :data:`SILENT`. Noise rather than a tone, so a random model's frames
    differ and it emits several words."""
    rng = np.random.default_rng(seed)
    samples = np.zeros(round(seconds * RATE), dtype=np.float32)
    at = 0.2
    while at < seconds:
        burst = rng.uniform(0.15, 0.5)
        if not (SILENT[0] - 0.5 < at < SILENT[1]):
            a, b = round(at * RATE), round(min(seconds, at + burst) * RATE)
            samples[a:b] = rng.standard_normal(b - a).astype(np.float32) * 0.2
        at += burst + rng.uniform(0.1, 0.6)
    return samples


def speech_file(dst: Path, seconds: float, *, audio: bool = True, seed: int = 7) -> Path:
    """A video of ``seconds``: a small H.264 picture and, with ``audio``, speech_signal()
    as AAC in .mp4 (what phones and cameras write; its encoder delay must not shift
    times) or as FLAC in .mkv (lossless, and ten times faster to encode)."""
    fmt, codec = ("mp4", "aac") if dst.suffix == ".mp4" else ("matroska", "flac")
    with av.open(str(dst), "w", format=fmt) as out:
        video = out.add_stream("libx264", rate=2, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream(codec, rate=RATE, layout="mono") if audio else None
        for index in range(round(seconds * 2)):
            pixels = np.full((48, 64, 3), (index * 7) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is None:
            return dst
        samples = speech_signal(seconds, seed)
        layout = sound.codec_context.format.name  # fltp for AAC, s16 for FLAC
        if layout == "s16":
            samples = (samples * 32767).astype(np.int16)
        step = sound.codec_context.frame_size or 1024
        for start in range(0, samples.size, step):
            chunk = samples[start : start + step][None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format=layout, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    return dst
