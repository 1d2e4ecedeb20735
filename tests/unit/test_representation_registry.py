"""The registry of representations: defaults, --with/--without, and third-party plugins
found through the ``polylens.representations`` entry-point group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _plugins import install_plugin

import polylens.representations.registry as registry_module
from polylens.errors import ConfigError
from polylens.representations.registry import RepresentationRegistry


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "polylens_brevity", raising=False)


def test_defaults_then_with_and_without() -> None:
    registry = RepresentationRegistry()
    assert registry.defaults() == ["image", "text", "bm25", "phash"]
    assert registry.choose(None, (), ("phash",)) == ["image", "text", "bm25"]
    # A recorded index keeps what it has; --with adds, --without removes.
    assert registry.choose(["text", "bm25"], ("phash",), ()) == ["text", "bm25", "phash"]
    assert registry.choose(["text", "bm25", "phash"], (), ("bm25",)) == ["text", "phash"]


def test_unknown_or_contradictory_names_are_refused_with_the_known_ones() -> None:
    registry = RepresentationRegistry()
    with pytest.raises(
        ConfigError,
        match=r"unknown representation\(s\) colpali in --with; known: image, text, bm25, phash",
    ):
        registry.choose(None, ("colpali",), ())
    with pytest.raises(ConfigError, match="phash: both --with and --without"):
        registry.choose(None, ("phash",), ("phash",))


def test_plugins_register_through_the_entry_point_group(plugin: None) -> None:
    registry = RepresentationRegistry.with_plugins()
    assert "brevity" in registry.names
    assert "brevity" not in registry.defaults()  # a plugin may be opt-in
    assert registry.create("brevity").title == "word counts"


def test_a_broken_plugin_does_not_break_polylens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_plugin(site)
    (site / "polylens_brevity.py").write_text("raise RuntimeError('broken plugin')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "polylens_brevity", raising=False)
    warnings: list[str] = []
    monkeypatch.setattr(registry_module.log, "warning", lambda msg, *a: warnings.append(msg % a))
    registry = RepresentationRegistry.with_plugins()
    assert registry.names == ["image", "text", "bm25", "phash", "late"]
    assert warnings == ["representation plugin brevity failed to load: broken plugin"]
