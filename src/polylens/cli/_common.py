"""Shared CLI plumbing: consoles, option types, and mapping errors to exit codes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand

from polylens.errors import PolylensError

T = TypeVar("T")

DEFAULT_INDEX = ".polylens"

err_console = Console(stderr=True)
out_console = Console()


def print_table(table: Any, console: Console | None = None) -> None:
    """A table at its natural width when the output is not a terminal (a log, a pipe):
    there rich assumes 80 columns and would cut a wide table's cells to "0.44…"."""
    console = console or out_console
    if not console.is_terminal:
        from rich.measure import Measurement

        natural = Measurement.get(console, console.options.update(max_width=1000), table)
        if natural.maximum > console.width:  # print() never goes past the console's width
            console = Console(file=console.file, width=natural.maximum, color_system=None)
    console.print(table)


IndexOption = Annotated[
    Path,
    typer.Option(
        "--index",
        "-i",
        help="Index directory (default: ./.polylens, or $POLYLENS_INDEX).",
        envvar="POLYLENS_INDEX",
        show_default=False,
        metavar="DIR",
    ),
]


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help=(
            "Where the index's data lives: qdrant://HOST:PORT[?api_key_env=VAR&prefix=P], "
            "qdrant+local:DIR or qdrant+memory: (default: the index's setting, else the "
            "embedded LanceDB store; or $POLYLENS_STORE). Recorded by a new index."
        ),
        envvar="POLYLENS_STORE",
        show_default=False,
        metavar="URL",
    ),
]


class ConventionalCommand(TyperCommand):
    """Help as Unix tools print it: ``Usage: polylens index [OPTIONS] PATHS...``, options
    with a metavar only when they take a value (``--image FILE``, never ``<bool>``).

    typer 0.29 writes every parameter's Python type into help (``--json <bool>``,
    ``--kind <list[str]>``, ``{paths}...``) and offers no switch for it; this command
    class writes the usage line and the argument rows itself and lets options show
    the metavars they declare. Everything else (parsing, defaults, env vars) is typer's.
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar or "[OPTIONS]"]
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_label(param, brackets=True))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                help_text = getattr(param, "help", None) or ""
                if param.required:
                    help_text += "  [required]"
                arguments.append((_argument_label(param, brackets=False), help_text))
            else:
                if param.metavar is None and not getattr(param, "is_flag", False):
                    param.metavar = (param.name or "value").upper()  # argparse's convention
                record = param.get_help_record(ctx)
                if record is not None:
                    options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_label(param: Any, *, brackets: bool) -> str:
    label = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        label += "..."
    return f"[{label}]" if brackets and not param.required else label


def shown_path(path: str) -> str:
    """A path as a person reads it: relative to the working directory when under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def clock(seconds: float) -> str:
    """Seconds as a video player shows them: 01:23, or 1:02:03 past an hour."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def located(hit: Any) -> str:
    """Where in its file a hit (or a reference) lies: a page, or a video's time range."""
    start = getattr(hit, "start", None)
    if start is not None:
        end = getattr(hit, "end", None)
        return f" @ {clock(start)}–{clock(end if end is not None else start)}"
    page = getattr(hit, "page", None)
    return f"  p.{page}" if page else ""


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
    # Model loading is kept quiet by the library itself (polylens.encoders.quiet), so
    # transformers is not imported here: argument errors must come before heavy imports.


def call(fn: Callable[[], T]) -> T:
    with cli_errors():
        return fn()
