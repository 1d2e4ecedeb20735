"""The representations polylens knows: the built-in ones, then plugins.

Owned by an object, not a module global. Plugins register through the
``polylens.representations`` entry-point group: each entry is a callable that receives the
registry and calls :meth:`RepresentationRegistry.add` with a
:class:`~polylens.representations.base.Representation` subclass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from importlib import metadata

from polylens.errors import ConfigError
from polylens.representations.base import Representation

log = logging.getLogger(__name__)

ENTRY_POINTS = "polylens.representations"


def _builtins() -> list[type[Representation]]:
    from polylens.representations.bm25 import Bm25
    from polylens.representations.image_text import ImageText
    from polylens.representations.late_interaction import LateInteraction
    from polylens.representations.phash import PerceptualHash
    from polylens.representations.text_embedding import TextEmbedding

    return [ImageText, TextEmbedding, Bm25, PerceptualHash, LateInteraction]


class RepresentationRegistry:
    def __init__(self, classes: Iterable[type[Representation]] | None = None) -> None:
        self._classes: dict[str, type[Representation]] = {}
        for cls in _builtins() if classes is None else classes:
            self.add(cls)

    @classmethod
    def with_plugins(cls) -> RepresentationRegistry:
        registry = cls()
        for entry in metadata.entry_points(group=ENTRY_POINTS):
            try:
                entry.load()(registry)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break polylens
                log.warning("representation plugin %s failed to load: %s", entry.name, exc)
        return registry

    def add(self, cls: type[Representation]) -> None:
        name = getattr(cls, "name", "")
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"a representation needs a plain name, got {name!r}")
        if name in self._classes and self._classes[name] is not cls:
            raise ConfigError(f"two representations are named {name!r}")
        self._classes[name] = cls

    @property
    def names(self) -> list[str]:
        return list(self._classes)

    def defaults(self) -> list[str]:
        return [name for name, cls in self._classes.items() if cls.default]

    def create(self, name: str) -> Representation:
        return self._classes[name]()

    def check(self, names: Sequence[str], *, what: str) -> None:
        unknown = [n for n in names if n not in self._classes]
        if unknown:
            raise ConfigError(
                f"unknown representation(s) {', '.join(unknown)} in {what}; "
                f"known: {', '.join(self._classes)}"
            )

    def choose(
        self, recorded: Sequence[str] | None, with_: Sequence[str], without: Sequence[str]
    ) -> list[str]:
        """The index's representations: what it recorded (or the defaults for a new index),
        plus ``with_``, minus ``without``, in registration order."""
        self.check(with_, what="--with")
        self.check(without, what="--without")
        both = set(with_) & set(without)
        if both:
            raise ConfigError(f"{', '.join(sorted(both))}: both --with and --without")
        chosen = set(self.defaults() if recorded is None else recorded) | set(with_)
        chosen -= set(without)
        return [n for n in self.names if n in chosen]
