"""Lazy imports with an actionable message when an optional dependency is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from polylens.errors import MissingExtraError


def import_or_raise(
    module: str, *, package: str | None = None, extra: str | None = None
) -> ModuleType:
    """Import ``module`` or raise MissingExtraError saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module.split(".")[0]
        hint = f"pip install 'polylens[{extra}]'" if extra else f"pip install {pkg}"
        raise MissingExtraError(
            f"{module!r} is required for this feature but is not installed ({exc}). Install it with: {hint}"
        ) from exc
