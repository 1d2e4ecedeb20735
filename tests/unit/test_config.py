from __future__ import annotations

from pathlib import Path

import pytest

from polylens.config import CONFIG_FILE, IndexConfig, load_config
from polylens.errors import ConfigError


def test_file_then_overrides(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('batch_size = 8\nimage_model = "siglip-b16"\nrrf_k = 10\n')
    cfg = load_config(tmp_path, {"batch_size": 4, "ocr": None})
    assert cfg.batch_size == 4 and cfg.image_model == "siglip-b16" and cfg.rrf_k == 10
    assert cfg.ocr is True  # None means "not given"


def test_written_toml_round_trips(tmp_path: Path) -> None:
    cfg = IndexConfig().replace(image_model='we"ird\\name', workers=3)
    (tmp_path / CONFIG_FILE).write_text(cfg.to_toml())
    assert load_config(tmp_path) == cfg


@pytest.mark.parametrize(
    "text, message",
    [
        ("batch_size = 0", "at least 1"),
        ('batch_size = "big"', "must be int"),
        ("colour = 1", "unknown setting"),
        ("ocr = 1", "must be bool"),
        ('device = "tpu"', "device must be"),
        ("ocr_presence_side = 8", "between 32 and 4096"),
        ("batch_size = [", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)
