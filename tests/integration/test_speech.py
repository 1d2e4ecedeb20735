"""Speech transcription through real transformers ASR pipelines, offline.

The models are tiny, randomly initialised Wav2Vec2 (CTC) and Whisper checkpoints built
here (tests/_tiny_asr.py), so their words are noise: these tests check the plumbing users
depend on, not the words. Cues come back timed from the file's start and inside the
asked window; audio is decoded in bounded chunks, aligned to the file's clock (AAC's
encoder delay included); silence and files without sound give no text; a model that is
not here fails with what to do about it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="speech needs PyAV: pip install av")
pytest.importorskip("transformers", reason="speech needs transformers")

import torch  # noqa: E402
from _tiny_asr import (  # noqa: E402
    RATE,
    SILENT,
    make_tiny_wav2vec2,
    make_tiny_whisper,
    speech_file,
    speech_signal,
)

from polylens.encoders.speech import (  # noqa: E402
    CHUNK_SECONDS,
    SAMPLE_RATE,
    SpeechRecognizer,
    audio_chunks,
    group_words,
    load_speech,
)
from polylens.errors import ConfigError, ModelError, ModelNotAvailableError  # noqa: E402
from polylens.ingest.subtitles import Cue  # noqa: E402

TALK_SECONDS = 70.0


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Toy models run fastest on one thread; on a busy two-core machine torch's thread
    pool makes each tiny op wait for a wake-up (seconds per transcription)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("speech")
    return {
        "talk": speech_file(root / "talk.mkv", TALK_SECONDS),  # FLAC: long, cheap to write
        "memo": speech_file(root / "memo.mp4", 8.0),  # AAC, as phones record
        "mute": speech_file(root / "mute.mp4", 3.0, audio=False),
    }


@pytest.fixture(scope="module")
def ctc(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecognizer:
    return load_speech(str(make_tiny_wav2vec2(tmp_path_factory.mktemp("asr") / "w2v")))


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecognizer:
    return load_speech(str(make_tiny_whisper(tmp_path_factory.mktemp("asr") / "whisper")))


def _inside(cues: list[Cue], start: float, end: float) -> None:
    assert cues, "the model said nothing"
    for cue in cues:
        assert isinstance(cue, Cue)
        assert start <= cue.start <= cue.end <= end, (start, end, cue)
        assert cue.text and cue.text == cue.text.strip()
    assert [c.start for c in cues] == sorted(c.start for c in cues)


def _envelope(samples: np.ndarray, rate: int, step: float = 0.01) -> np.ndarray:
    edges = (np.arange(int(samples.size / (rate * step)) + 1) * rate * step).astype(int)
    return np.array([np.mean(np.square(samples[a:b])) for a, b in itertools.pairwise(edges)])


# -- decoding ------------------------------------------------------------------------


def test_a_long_window_is_decoded_in_bounded_contiguous_chunks(media: dict[str, Path]) -> None:
    start, end = 12.5, 69.0
    chunks = list(audio_chunks(str(media["talk"]), start, end))
    assert len(chunks) >= 2
    for _, samples in chunks:
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert 0 < samples.size <= CHUNK_SECONDS * SAMPLE_RATE
    assert chunks[0][0] == pytest.approx(start, abs=1e-3)
    for (offset, samples), (following, _) in itertools.pairwise(chunks):
        assert following == pytest.approx(offset + samples.size / SAMPLE_RATE, abs=1e-6)
        # cut at the quietest moment near the limit: in a pause, not inside a "syllable"
        assert np.abs(samples[-80:]).max() < 0.01
    total = sum(samples.size for _, samples in chunks) / SAMPLE_RATE
    assert total == pytest.approx(end - start, abs=0.01)


@pytest.mark.parametrize("name", ["memo", "talk"])
def test_decoded_audio_keeps_the_files_clock(media: dict[str, Path], name: str) -> None:
    """A window that does not start at 0, through a seek and resampling to 16 kHz: its
    bursts line up with the signal that was written to within 10 ms."""
    start, end = 3.3, 7.9
    (offset, samples), *rest = audio_chunks(str(media[name]), start, end)
    assert not rest and offset == pytest.approx(start, abs=1e-3)
    decoded = _envelope(samples, SAMPLE_RATE)
    written = _envelope(speech_signal(8.0)[round(offset * RATE) :], RATE)[: decoded.size]
    lags = range(-5, 6)
    inner = slice(10, decoded.size - 10)
    scores = [np.corrcoef(decoded[inner], np.roll(written, -lag)[inner])[0, 1] for lag in lags]
    assert lags[int(np.argmax(scores))] == 0 and max(scores) > 0.9, scores


def test_no_audio_stream_or_a_window_past_the_end_gives_nothing(
    media: dict[str, Path], ctc: SpeechRecognizer
) -> None:
    assert list(audio_chunks(str(media["mute"]), 0.0, 3.0)) == []
    assert ctc.transcribe(str(media["mute"]), 0.0, 3.0) == []
    assert list(audio_chunks(str(media["memo"]), 20.0, 30.0)) == []


# -- transcription ---------------------------------------------------------------------


def test_ctc_cues_are_absolute_and_inside_the_window(
    media: dict[str, Path], ctc: SpeechRecognizer
) -> None:
    assert ctc.kind == "ctc"
    start, end = 12.5, 69.0
    cues = ctc.transcribe(str(media["talk"]), start, end)
    _inside(cues, start, end)
    assert cues[0].start < start + 5  # times carry the window's start ...
    assert cues[-1].end > start + CHUNK_SECONDS  # ... and the second chunk's


def test_whisper_cues_are_absolute_and_inside_the_window(
    media: dict[str, Path], whisper: SpeechRecognizer
) -> None:
    """Whisper pads every input to 30 s and times what it hears in the padding too, and
    a random one wanders far past the audio: nothing may leave the window."""
    assert whisper.kind == "seq2seq_whisper"
    start, end = 12.5, 69.0
    cues = whisper.transcribe(str(media["talk"]), start, end)
    _inside(cues, start, end)
    assert cues[-1].end > start + CHUNK_SECONDS
    short = whisper.transcribe(str(media["memo"]), 2.0, 6.5)  # AAC, one short chunk
    _inside(short, 2.0, 6.5)


def test_silence_is_not_transcribed(media: dict[str, Path], whisper: SpeechRecognizer) -> None:
    """Whisper makes up text ("Thank you.") for silence; silent chunks never reach it."""
    assert whisper.transcribe(str(media["talk"]), SILENT[0] + 0.5, SILENT[1] - 0.5) == []


def test_concurrent_callers_get_what_one_caller_gets(
    media: dict[str, Path], ctc: SpeechRecognizer
) -> None:
    alone = ctc.transcribe(str(media["memo"]), 1.0, 7.0)
    results: list[list[Cue]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(ctc.transcribe(str(media["memo"]), 1.0, 7.0))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [alone] * 3


def test_words_are_grouped_into_short_phrases() -> None:
    words = [Cue(10.0 + 0.5 * i, 10.3 + 0.5 * i, f"w{i}") for i in range(14)]
    words.append(Cue(20.0, 20.4, "after"))  # a 2.7 s pause before it
    cues = group_words(words)
    assert " ".join(c.text for c in cues) == " ".join(w.text for w in words)
    assert all(c.end - c.start <= 5.0 for c in cues)
    assert [c.start for c in cues] == [10.0, 15.0, 20.0]
    assert group_words([]) == []


# -- models that are not here ----------------------------------------------------------


@pytest.mark.parametrize("name", ["hf-hub:nobody/nothing", "nobody/nothing"])
def test_a_hub_model_not_on_this_machine_says_what_to_do(name: str) -> None:
    with pytest.raises(ModelNotAvailableError) as caught:
        load_speech(name)  # HF_HUB_OFFLINE=1 (tests/conftest.py)
    message = str(caught.value)
    assert "hf download nobody/nothing" in message and "local directory" in message
    assert "Traceback" not in message


def test_other_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        load_speech(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="unknown speech model"):
        load_speech("not a model")
    with pytest.raises(ModelError, match="cannot load speech model"):
        load_speech(str(tmp_path))  # a directory without a model
