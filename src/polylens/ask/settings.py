"""Where ``ask`` sends its requests, resolved once: flags > environment > polylens.toml.

The API key is read only from the environment and is kept out of ``repr``, logs and
every error message: it never reaches the index, a JSON answer or ``status``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from polylens.config import IndexConfig
from polylens.errors import ConfigError, EndpointNotConfiguredError

HOW_TO_CONFIGURE = (
    "set POLYLENS_LLM_URL (or --endpoint, or llm_url in the index's polylens.toml) to the "
    "base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 from "
    "`transformers serve`, `vllm serve`, `llama-server` or Ollama, and POLYLENS_LLM_MODEL "
    "(or --model) to the model it serves"
)


@dataclass(frozen=True)
class AskSettings:
    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    vision: bool = True
    timeout: float = 60.0
    max_tokens: int = 1024
    max_evidence: int = 6
    rounds: int = 1
    image_pixels: int = 1_000_000
    image_bytes: int = 3_000_000
    text_chars: int = 4000
    weak_below: float = 0.1

    @property
    def configured(self) -> bool:
        return bool(self.url and self.model)

    def require_endpoint(self) -> None:
        """Raise with how to set one up when no endpoint or model is configured."""
        missing = [
            name for name, value in (("endpoint", self.url), ("model", self.model)) if not value
        ]
        if missing:
            raise EndpointNotConfiguredError(
                f"ask needs a model {' and a '.join(missing)}: {HOW_TO_CONFIGURE}"
            )

    @property
    def endpoint_label(self) -> str:
        """The endpoint as safe to show: scheme, host and path, never credentials."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def resolve_settings(
    config: IndexConfig,
    *,
    endpoint: str | None = None,
    model: str | None = None,
    max_evidence: int | None = None,
    rounds: int | None = None,
    vision: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> AskSettings:
    env = os.environ if env is None else env
    url = endpoint or env.get("POLYLENS_LLM_URL") or config.llm_url
    if url:
        _check_url(url)
    key = env.get("POLYLENS_LLM_API_KEY") or env.get("OPENAI_API_KEY") or None
    n_evidence = config.max_evidence if max_evidence is None else max_evidence
    n_rounds = config.ask_rounds if rounds is None else rounds
    if not 1 <= n_evidence <= 50:
        raise ConfigError(f"max_evidence must be between 1 and 50, got {n_evidence}")
    if not 1 <= n_rounds <= 10:
        raise ConfigError(f"rounds must be between 1 and 10, got {n_rounds}")
    return AskSettings(
        url=(url or "").rstrip("/"),
        model=model or env.get("POLYLENS_LLM_MODEL") or config.llm_model,
        api_key=key,
        vision=config.llm_vision if vision is None else vision,
        timeout=config.llm_timeout,
        max_tokens=config.llm_max_tokens,
        max_evidence=n_evidence,
        rounds=n_rounds,
        image_pixels=config.evidence_image_pixels,
        image_bytes=config.evidence_image_bytes,
        text_chars=config.evidence_text_chars,
        weak_below=config.weak_below,
    )


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the model endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1, "
            f"got {parts.scheme or 'no scheme'}://{parts.hostname or '(no host)'}"
        )
    if parts.username or parts.password:
        raise ConfigError(
            "put the API key in POLYLENS_LLM_API_KEY, not in the endpoint URL "
            "(the URL is shown in messages)"
        )
