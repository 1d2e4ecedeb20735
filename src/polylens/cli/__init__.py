"""The `polylens` command line. One module per command; errors become exit codes."""

from __future__ import annotations

import os

import typer

from polylens.cli._common import ConventionalCommand
from polylens.cli.ask_cmd import ask
from polylens.cli.dupes_cmd import dupes
from polylens.cli.eval_cmd import eval_
from polylens.cli.index_cmd import index
from polylens.cli.search_cmd import search
from polylens.cli.serve_cmd import serve
from polylens.cli.status_cmd import status

app = typer.Typer(
    name="polylens",
    help="Multimodal search over your own photos, PDFs, scans and text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain, conventional help (see ConventionalCommand)
)
app.command(cls=ConventionalCommand)(index)
app.command(cls=ConventionalCommand)(search)
app.command(cls=ConventionalCommand)(ask)
app.command(cls=ConventionalCommand)(status)
app.command(cls=ConventionalCommand)(dupes)
app.command(name="eval", cls=ConventionalCommand)(eval_)
app.command(cls=ConventionalCommand)(serve)


def main() -> None:
    # The store's own (Rust) log would print a warning line ahead of the one-line error
    # polylens gives for the same failure (a full disk, say). The command line is an
    # application: it sets this default before the store loads; the library does not.
    os.environ.setdefault("LANCEDB_LOG", "error")
    app()


__all__ = ["app", "main"]
