"""Find a model's files locally or fetch them, and fail fast and clearly when offline.

``huggingface_hub`` retries an unreachable host for about half a minute per file before
failing with a generic message. We look in the local cache first, then check in a few
seconds whether the hub can be reached at all, and otherwise raise
ModelNotAvailableError saying how to get the model onto this machine.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from polylens._lazy import import_or_raise
from polylens.encoders.quiet import quiet_loading
from polylens.errors import ModelNotAvailableError

_PROBE_TIMEOUT_S = 3.0
_WEIGHT_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.py",
    "tokenizer*",
    "vocab*",
    "merges*",
    "1_Pooling/*",
    "2_Normalize/*",
]


def _offline_message(repo_id: str, why: str) -> str:
    return (
        f"model {repo_id!r} is not on this machine and cannot be downloaded ({why}). "
        f"On a machine with internet run `hf download {repo_id} --local-dir DIR`, "
        f"copy DIR here and pass it as the model (a local directory), or copy the Hugging Face "
        f"cache (~/.cache/huggingface) over. To index without it, pass `none` as the model."
    )


def _hub_reachable() -> bool:
    import_or_raise("huggingface_hub")
    import importlib

    constants = importlib.import_module("huggingface_hub.constants")
    endpoint = getattr(constants, "ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def resolve_hub_model(repo_id: str) -> Path:
    """Local directory holding ``repo_id``'s files, downloading them if possible."""
    hub = import_or_raise("huggingface_hub")
    try:
        return Path(
            hub.snapshot_download(repo_id, local_files_only=True, allow_patterns=_WEIGHT_PATTERNS)
        )
    except Exception:  # noqa: BLE001 - any cache miss means "not here"; decided below
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise _not_available(repo_id, "HF_HUB_OFFLINE is set")
    if not _hub_reachable():
        raise _not_available(repo_id, "the model hub cannot be reached")
    try:
        with quiet_loading():
            return Path(hub.snapshot_download(repo_id, allow_patterns=_WEIGHT_PATTERNS))
    except Exception as exc:  # noqa: BLE001 - hub errors vary by version; all mean "cannot get it"
        raise _not_available(repo_id, f"download failed: {exc}") from exc


def _not_available(repo_id: str, why: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        _offline_message(repo_id, why), summary=f"not on this machine; {_short(why)}"
    )


def _short(why: str) -> str:
    if why.startswith("download failed"):
        return "download failed"
    return why.replace("the model hub cannot be reached", "hub unreachable")
