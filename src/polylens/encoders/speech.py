"""Speech to timed text: a transformers speech-recognition pipeline over a media file's audio,
so the segments of a video without subtitles can still be found by what is said in them.

Audio is decoded with PyAV (already needed for video) rather than by the pipeline, which
would need an ``ffmpeg`` binary, read the whole file into memory, and need torchaudio to
resample. At most one chunk of :data:`CHUNK_SECONDS` (Whisper's own window) is held at a
time, so a long window costs no more memory than a short one; a chunk is cut at the
quietest moment of its last seconds, so a cut rarely falls inside a word.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polylens._lazy import import_or_raise
from polylens.encoders.device import pick_device
from polylens.encoders.quiet import quiet_loading
from polylens.errors import ConfigError, CorruptFileError, ModelError
from polylens.ingest.subtitles import Cue

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what every common ASR model was trained on
CHUNK_SECONDS = 30.0  # Whisper's input window; the most audio held or transcribed at once
_CUT_SEARCH_S = 2.0  # a chunk ends at the quietest 50 ms of its last 2 s
_CUT_FRAME_S = 0.05
_MIN_SECONDS = 0.1  # shorter than a CTC model's receptive field, and no word anyway
_SILENCE = 1e-3  # peak below about -60 dBFS: not transcribed (Whisper invents text on silence)
_MAX_CUE_S = 5.0  # CTC words are grouped into cues at most this long ...
_WORD_GAP_S = 1.0  # ... and a pause this long starts a new one


def load_speech(name: str, *, device: str = "cpu") -> SpeechRecognizer:
    """The speech model ``name``: an alias (``whisper-tiny``), a hub id
    (``openai/whisper-tiny``, ``hf-hub:ORG/NAME``) or a local directory, resolved like
    every other model (:class:`polylens.encoders.registry.ModelRegistry`).
    ModelNotAvailableError, saying how to get the model here, when it is neither on this
    machine nor downloadable."""
    from polylens.encoders.registry import ModelRegistry

    recogniser = ModelRegistry.with_plugins().load_speech(name, device=device)
    if recogniser is None:
        raise ConfigError("no speech model given (none): nothing to load")
    return recogniser


class SpeechRecognizer:
    """A transformers automatic-speech-recognition pipeline, loaded once. Decoding runs on
    the caller's thread; the model runs for one caller at a time (a lock), since one
    forward pass already uses every core."""

    def __init__(self, name: str, path: Path, *, device: str = "cpu") -> None:
        transformers = import_or_raise("transformers")
        self.name = name
        self.resolved = str(path)
        self.device, dtype = pick_device(device)
        try:
            with quiet_loading():
                self._pipe = transformers.pipeline(
                    "automatic-speech-recognition", model=str(path), device=self.device, dtype=dtype
                )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load speech model from {path}: {exc}") from exc
        self.kind = str(self._pipe.type)  # ctc | seq2seq_whisper | seq2seq | ...
        rate = getattr(self._pipe.feature_extractor, "sampling_rate", None)
        self.sampling_rate = int(rate or SAMPLE_RATE)
        self._call: dict[str, Any] = {}
        if self.kind == "ctc":
            self._call = {"return_timestamps": "word"}
        elif self.kind == "seq2seq_whisper":
            # Greedy: the pipeline's default of 5 beams costs about 5x the decoding on a CPU
            # for little gain in what a search can find.
            generate: dict[str, Any] = {"num_beams": 1}
            config = self._pipe.model.generation_config
            if getattr(config, "is_multilingual", False) and hasattr(config, "task_to_id"):
                generate["task"] = "transcribe"  # what is said, in its language; not translated
            self._call = {"return_timestamps": True, "generate_kwargs": generate}
        self._lock = threading.Lock()

    def transcribe(self, path: str, start: float, end: float) -> list[Cue]:
        """Speech in ``[start, end)`` seconds of ``path``'s first audio stream, as cues
        timed from the file's start; ``[]`` without an audio stream. Audio that stops
        decoding part way costs only what follows the damage."""
        av = import_or_raise("av")
        cues: list[Cue] = []
        reached = start
        try:
            for offset, samples in audio_chunks(path, start, end, rate=self.sampling_rate):
                duration = samples.size / self.sampling_rate
                reached = offset + duration
                if duration < _MIN_SECONDS or float(np.abs(samples).max()) < _SILENCE:
                    continue
                with self._lock, quiet_loading():  # no generation-config warnings per call
                    out = self._pipe(samples, **self._call)
                cues.extend(self._cues(out, offset, duration))
        except av.error.FFmpegError as exc:
            log.warning("%s: audio not decoded past %.1f s: %s", path, reached, exc)
        return cues

    def _cues(self, out: dict[str, Any], offset: float, duration: float) -> list[Cue]:
        """The pipeline's chunk-relative pieces as absolute cues inside the chunk."""
        text = str(out.get("text") or "").strip()
        pieces = out.get("chunks")
        if not pieces:  # a model without timestamps: the chunk is the cue
            return [Cue(offset, offset + duration, text)] if text else []
        cues = []
        for piece in pieces:
            words = str(piece.get("text") or "").strip()
            first, last = piece.get("timestamp") or (None, None)
            begin = 0.0 if first is None else float(first)
            if not words or begin >= duration:  # Whisper times the padding of short input
                continue
            stop = duration if last is None else min(float(last), duration)
            cues.append(Cue(offset + begin, offset + max(begin, stop), words))
        return group_words(cues) if self.kind == "ctc" else cues


def group_words(words: list[Cue]) -> list[Cue]:
    """Word cues (CTC) joined into phrases of at most :data:`_MAX_CUE_S` seconds, split
    at pauses: a cue per word would make every segment's text a list of fragments."""
    cues: list[Cue] = []
    group: list[Cue] = []
    for word in words:
        if group and (
            word.end - group[0].start > _MAX_CUE_S or word.start - group[-1].end > _WORD_GAP_S
        ):
            cues.append(Cue(group[0].start, group[-1].end, " ".join(w.text for w in group)))
            group = []
        group.append(word)
    if group:
        cues.append(Cue(group[0].start, group[-1].end, " ".join(w.text for w in group)))
    return cues


def audio_chunks(
    path: str, start: float, end: float, *, rate: int = SAMPLE_RATE, seconds: float = CHUNK_SECONDS
) -> Iterator[tuple[float, np.ndarray]]:
    """``(start seconds, mono float32 samples at rate)`` pieces of ``[start, end)`` of the
    first audio stream, in order, each at most ``seconds`` long; none without audio."""
    av = import_or_raise("av")
    limit = int(seconds * rate)
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise CorruptFileError(f"not a readable media file: {exc}") from exc
    with container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        seek = start > 0 and stream.time_base is not None
        if seek:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        held: list[np.ndarray] = []
        size, first = 0, start
        for clock, data in _resampled(av, container, stream, rate, start if seek else 0.0):
            if clock >= end:
                break
            skip = max(0, round((start - clock) * rate))
            data = data[skip : max(skip, round((end - clock) * rate))]
            if data.size == 0:
                continue
            if size == 0:
                first = clock + skip / rate
            held.append(data)
            size += data.size
            while size >= limit:
                joined = np.concatenate(held)
                cut = _quiet_cut(joined[:limit], rate)
                yield first, joined[:cut]
                held, size, first = [joined[cut:]], joined.size - cut, first + cut / rate
        if size:
            yield first, np.concatenate(held)


def _resampled(
    av: Any, container: Any, stream: Any, rate: int, unknown: float
) -> Iterator[tuple[float, Any]]:
    """Mono float32 blocks at ``rate``, each with the time of its first sample, counted
    from the first decoded frame's time (``unknown`` if it has none), since resampling
    changes sample counts, not durations."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    clock: float | None = None
    for frame in itertools.chain(container.decode(stream), [None]):
        if frame is not None and clock is None:
            clock = float(frame.time) if frame.time is not None else unknown
        if clock is None:
            return
        for block in resampler.resample(frame):
            data = block.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            yield clock, data
            clock += data.size / rate


def _quiet_cut(samples: np.ndarray, rate: int) -> int:
    """Where to end a full chunk: the middle of its quietest 50 ms in the last 2 s."""
    frame = max(1, int(rate * _CUT_FRAME_S))
    count = int(rate * _CUT_SEARCH_S) // frame
    if samples.size < 2 * count * frame or count < 2:
        return samples.size
    tail = samples[samples.size - count * frame :].reshape(count, frame)
    quietest = int(np.argmin(np.square(tail).mean(axis=1)))
    return samples.size - (count - quietest) * frame + frame // 2
