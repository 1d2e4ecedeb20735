"""The `polylens` command line. One module per command; errors become exit codes."""

from __future__ import annotations

import typer

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
)
app.command()(index)
app.command()(search)
app.command()(status)
app.command(name="eval")(eval_)
app.command()(serve)


def main() -> None:
    app()


__all__ = ["app", "main"]
