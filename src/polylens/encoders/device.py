"""Pick the torch device and dtype: ``auto`` means CUDA, then MPS, then CPU."""

from __future__ import annotations

from typing import Any

from polylens._lazy import import_or_raise
from polylens.errors import ConfigError


def pick_device(requested: str) -> tuple[str, Any]:
    """(device string, torch dtype): half precision on CUDA, float32 elsewhere."""
    torch = import_or_raise("torch")
    if requested == "auto":
        if torch.cuda.is_available():
            requested = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            requested = "mps"
        else:
            requested = "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is available")
    dtype = torch.float16 if requested.startswith("cuda") else torch.float32
    return requested, dtype
