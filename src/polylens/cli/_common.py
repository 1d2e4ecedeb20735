"""Shared CLI plumbing: consoles, option types, and mapping errors to exit codes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from polylens.errors import PolylensError

T = TypeVar("T")

DEFAULT_INDEX = ".polylens"

err_console = Console(stderr=True)
out_console = Console()

IndexOption = Annotated[
    Path,
    typer.Option(
        "--index",
        "-i",
        help="Index directory (default: ./.polylens, or $POLYLENS_INDEX).",
        envvar="POLYLENS_INDEX",
        show_default=False,
    ),
]


def default_index() -> Path:
    return Path(os.environ.get("POLYLENS_INDEX", DEFAULT_INDEX))


@contextmanager
def cli_errors() -> Iterator[None]:
    """Print a PolylensError as one red line and exit with its code; no tracebacks."""
    try:
        yield
    except PolylensError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: committed work is kept; run again to finish")
        raise typer.Exit(130) from None


def setup_logging(quiet: bool) -> None:
    """Library warnings (e.g. a model that could not load) go to stderr, once."""
    level = logging.ERROR if quiet else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    root = logging.getLogger("polylens")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("transformers", "sentence_transformers", "huggingface_hub", "RapidOCR"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def call(fn: Callable[[], T]) -> T:
    with cli_errors():
        return fn()
