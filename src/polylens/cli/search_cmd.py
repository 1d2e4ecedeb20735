"""`polylens search QUERY [--image FILE]`: fused search, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from polylens.cli._common import IndexOption, cli_errors, default_index, out_console, setup_logging
from polylens.engine import open_index
from polylens.errors import InputError


def search(
    query: Annotated[
        str | None, typer.Argument(help="What to look for (optional with --image).")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Search by this image (with QUERY: composed).")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Number of hits.")] = 10,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="image, page or text (repeatable).")
    ] = None,
    index_dir: IndexOption = None,  # type: ignore[assignment]
    as_json: Annotated[
        bool, typer.Option("--json", help="Print hits as a JSON array, best first.")
    ] = False,
) -> None:
    """Search an index by text, by image, or by both."""
    setup_logging(as_json)
    with cli_errors():
        if not query and image is None:
            raise InputError("give a QUERY, --image FILE, or both")
        with open_index(index_dir or default_index(), create=False, serve_from_memory=False) as idx:
            hits = idx.search(query, image=image, k=k, kind=kind or None)
    if as_json:
        out_console.print_json(json.dumps([h.to_dict() for h in hits]))
        return
    if not hits:
        out_console.print("no matches")
        return
    table = Table(show_header=True, header_style="bold", expand=True)
    table.add_column("#", justify="right", width=3)
    table.add_column("score", justify="right", width=7)
    table.add_column("kind", width=5)
    table.add_column("where", overflow="fold", ratio=2)
    table.add_column("snippet", overflow="fold", ratio=3)
    for rank, hit in enumerate(hits, start=1):
        where = hit.path + (f"  p.{hit.page}" if hit.page else "")
        table.add_row(str(rank), f"{hit.score:.4f}", hit.kind, where, (hit.snippet or "")[:200])
    out_console.print(table)
