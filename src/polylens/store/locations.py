"""Where an index's data lives: the ``store`` setting (``--store URL``) read into a typed
location, and the store opened for it.

``""`` (the default) is the embedded LanceDB store in the index directory. Qdrant is
named by URL: ``qdrant://HOST:PORT[?api_key_env=VAR&prefix=P&shards=N&replicas=N&
timeout=S&https=true]`` for a server or cluster, ``qdrant+local:DIR`` and
``qdrant+memory:`` for qdrant-client's local mode. A URL never carries a secret: the API
key is read from the environment variable it names, so ``polylens.toml`` (which records
the setting) holds only that name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from polylens.errors import ConfigError

if TYPE_CHECKING:
    from polylens.store.base import Store

STORE_FORMS = (
    "'' (the embedded LanceDB store), 'qdrant://HOST:PORT[?api_key_env=VAR&prefix=P&"
    "shards=N&replicas=N&timeout=S&https=true]', 'qdrant+local:DIR' or 'qdrant+memory:'"
)
_QUERY_KEYS = {"api_key_env", "prefix", "shards", "replicas", "timeout", "https"}
_PREFIX = re.compile(r"^[A-Za-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class QdrantLocation:
    mode: str
    """``server`` (a Qdrant server or cluster), ``local`` (a directory) or ``memory``."""
    host: str = ""
    port: int = 6333
    https: bool = False
    path: Path | None = None
    api_key_env: str | None = None
    prefix: str | None = None
    """Put before every collection name (None: one derived from the index directory)."""
    shards: int | None = None
    replicas: int | None = None
    timeout: float = 10.0
    """Seconds a request may take before the store reports Qdrant as not answering."""

    def describe(self) -> str:
        """For messages: where it is, never the key."""
        if self.mode == "memory":
            return "Qdrant in memory (qdrant+memory:)"
        if self.mode == "local":
            return f"Qdrant local mode at {self.path}"
        scheme = "https" if self.https else "http"
        return f"the Qdrant server at {scheme}://{self.host}:{self.port}"

    def api_key(self) -> str | None:
        """The key from the environment variable the URL names (None: no key)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"the store URL names ${self.api_key_env} for Qdrant's API key, but it is not "
                f"set in this environment; export it, or drop api_key_env from the URL"
            )
        return key


def parse_store(spec: str) -> QdrantLocation | None:
    """The Qdrant location ``spec`` names, or None for the embedded store. Every mistake
    is a ConfigError naming the forms that work."""
    spec = spec.strip()
    if spec in ("", "lance", "lancedb"):
        return None
    if spec == "qdrant+memory:" or spec == "qdrant+memory://":
        return QdrantLocation(mode="memory")
    if spec.startswith("qdrant+local:"):
        rest = spec.removeprefix("qdrant+local:").removeprefix("//")
        if not rest:
            raise ConfigError("'qdrant+local:' needs a directory, e.g. qdrant+local:~/qdrant-data")
        return QdrantLocation(mode="local", path=Path(rest).expanduser().absolute())
    if not spec.startswith("qdrant://"):
        raise ConfigError(f"unknown store {spec!r}: use {STORE_FORMS}")
    parts = urlsplit(spec)
    if parts.username or parts.password:
        raise ConfigError(
            "a store URL must not carry credentials: put Qdrant's API key in an environment "
            "variable and name it with ?api_key_env=VAR"
        )
    try:
        port = parts.port or 6333
    except ValueError as exc:
        raise ConfigError(f"bad port in the store URL {spec!r}: {exc}") from None
    if not parts.hostname:
        raise ConfigError(f"the store URL {spec!r} names no host: use qdrant://HOST:PORT")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _QUERY_KEYS)
    if "api_key" in unknown:
        raise ConfigError(
            "a store URL must not carry the API key itself: export it as an environment "
            "variable and name that with ?api_key_env=VAR"
        )
    if unknown:
        raise ConfigError(
            f"unknown store URL parameter(s) {', '.join(unknown)}: "
            f"use {', '.join(sorted(_QUERY_KEYS))}"
        )
    env = query.get("api_key_env")
    if env is not None and not _ENV_NAME.match(env):
        raise ConfigError(f"api_key_env={env!r} is not an environment variable name")
    prefix = query.get("prefix")
    if prefix is not None and not _PREFIX.match(prefix):
        raise ConfigError(f"prefix={prefix!r}: use letters, digits, '_' and '-' only")
    return QdrantLocation(
        mode="server",
        host=parts.hostname,
        port=port,
        https=_flag(query.get("https", "false")),
        api_key_env=env,
        prefix=prefix,
        shards=_count(query, "shards"),
        replicas=_count(query, "replicas"),
        timeout=_seconds(query.get("timeout", "10")),
    )


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no", ""):
        return False
    raise ConfigError(f"https={value!r}: use true or false")


def _count(query: dict[str, str], key: str) -> int | None:
    if key not in query:
        return None
    try:
        value = int(query[key])
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{key}={query[key]!r} in the store URL: use a whole number >= 1")
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise ConfigError(f"timeout={value!r} in the store URL: use seconds between 0 and 3600")
    return seconds


def default_prefix(index_dir: Path) -> str:
    """Collections of the index at ``index_dir`` are named ``polylens_<dir>_<name>``
    unless the URL gives a prefix: two local indexes sharing one Qdrant stay apart."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", index_dir.name.lstrip(".")) or "index"
    return f"polylens_{name}_"


def open_store(spec: str, index_dir: Path, lance_dir: Path) -> Store:
    """The store ``spec`` names, opened (Qdrant's client and LanceDB import lazily)."""
    location = parse_store(spec)
    if location is None:
        from polylens.store.lance import LanceStore

        return LanceStore(lance_dir)
    from polylens.store.qdrant import QdrantStore

    if location.prefix is None:
        location = _with_prefix(location, default_prefix(index_dir))
    return QdrantStore(location)


def _with_prefix(location: QdrantLocation, prefix: str) -> QdrantLocation:
    from dataclasses import replace

    return replace(location, prefix=prefix)
