"""Shared fixtures: sample data, real scans, tiny real-architecture models, fast indexes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from polylens.engine import Index, open_index

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"

FAST = dict(image_model="fake-clip", text_model="fake-text", ocr=False)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def skimage_data() -> Path:
    skimage = pytest.importorskip(
        "skimage", reason="scikit-image provides the real scans; pip install scikit-image"
    )
    return Path(skimage.__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _tiny_models import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _tiny_models import make_tiny_siglip

    return make_tiny_siglip(tmp_path_factory.mktemp("models") / "tiny-siglip")


@pytest.fixture(scope="session")
def tiny_colqwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _tiny_colvision import make_tiny_colqwen2

    return make_tiny_colqwen2(tmp_path_factory.mktemp("models") / "tiny-colqwen2")


@pytest.fixture(scope="session")
def tiny_colpali_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _tiny_colvision import make_tiny_colpali

    return make_tiny_colpali(tmp_path_factory.mktemp("models") / "tiny-colpali")


@pytest.fixture(scope="session")
def ask_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BM25-only index for `ask` tests (see tests/_ask_corpus.py)."""
    from _ask_corpus import build_ask_index

    return build_ask_index(SAMPLES, tmp_path_factory.mktemp("ask"))


@pytest.fixture(scope="session")
def live_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(base_url, model)`` of a real OpenAI-compatible server (tests/_llm_server.py)."""
    from _llm_server import live_llm as serving

    with serving(tmp_path_factory.mktemp("llm")) as endpoint:
        yield endpoint


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the sample data that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns(".polylensignore"))
    return target


@pytest.fixture
def fast_index(tmp_path: Path) -> Iterator[Index]:
    """An index with deterministic fake encoders and no OCR: logic tests in milliseconds."""
    with open_index(tmp_path / "index", **FAST) as idx:
        yield idx


@pytest.fixture(autouse=True)
def _query_towers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporting a model's query tower to ONNX costs seconds per index run: in-process
    tests export only where marked ``query_towers`` (tests/integration/test_query_towers.py);
    the CLI run in a subprocess (tests/e2e) exports as a user's run does."""
    if request.node.get_closest_marker("query_towers") is None:
        from polylens.slots import ModelSlots

        monkeypatch.setattr(ModelSlots, "export_query_towers", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def _image_runtime(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Likewise the image tower's export to ONNX Runtime (and its timing): in-process tests
    run it only where marked ``image_runtime`` (tests/integration/test_image_runtime.py)."""
    if request.node.get_closest_marker("image_runtime") is None:
        from polylens.slots import ModelSlots

        monkeypatch.setattr(ModelSlots, "prepare_image_runtimes", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: a hub model that is not cached fails fast."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def show(request: pytest.FixtureRequest, line: str) -> None:
    """Print past pytest's output capture, so measured numbers show in a passing run."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")
