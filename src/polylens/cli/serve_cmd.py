"""`polylens serve`: the HTTP API and web page on an index."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

import typer

from polylens.cli._common import (
    IndexOption,
    StoreOption,
    cli_errors,
    default_index,
    err_console,
    setup_logging,
)
from polylens.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    index_dir: IndexOption = None,  # type: ignore[assignment]
    store: StoreOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; beyond loopback a token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(help="Access token (generated and printed when binding beyond loopback)."),
    ] = None,
    max_upload_mb: Annotated[
        int, typer.Option(min=1, max=1024, help="Largest accepted upload.")
    ] = 20,
) -> None:
    """Serve the search API (OpenAPI at /docs) and the web page."""
    setup_logging(False)
    with cli_errors():
        from polylens._lazy import import_or_raise

        uvicorn = import_or_raise("uvicorn", extra="server")
        from polylens.server.app import create_app

        if token is not None and len(token) < 16:
            raise ConfigError("--token must be at least 16 characters")
        if not is_loopback(host) and token is None:
            token = secrets.token_urlsafe(24)
            err_console.print(f"binding {host}: access token [bold]{token}[/]", highlight=False)
        app = create_app(
            index_dir or default_index(),
            token=token,
            max_upload_bytes=max_upload_mb << 20,
            store=store,
        )
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
        err_console.print(f"polylens is serving [bold]{url}[/]  (API docs: /docs)", highlight=False)
        uvicorn.run(app, host=host, port=port, log_level="warning")
