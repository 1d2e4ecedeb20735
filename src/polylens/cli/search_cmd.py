"""`polylens search QUERY [--image FILE]`: fused search, as readable lines or JSON."""

from __future__ import annotations

import json
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from polylens.cli._common import (
    IndexOption,
    StoreOption,
    cli_errors,
    default_index,
    err_console,
    located,
    out_console,
    setup_logging,
    shown_path,
)
from polylens.errors import InputError
from polylens.types import Hit


class KindChoice(StrEnum):
    image = "image"
    page = "page"
    text = "text"
    video = "video"


def search(
    query: Annotated[
        str | None,
        typer.Argument(help="What to look for (optional with --image).", metavar="QUERY"),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option(
            "--image", help="Search by this image (with QUERY: composed).", metavar="FILE"
        ),
    ] = None,
    k: Annotated[
        int, typer.Option("-k", "--k", min=1, max=1000, help="Number of hits.", metavar="N")
    ] = 10,
    kind: Annotated[
        list[KindChoice] | None,
        typer.Option(
            "--kind", help="Only hits of this kind (repeatable).", metavar="[image|page|text|video]"
        ),
    ] = None,
    index_dir: IndexOption = None,  # type: ignore[assignment]
    store: StoreOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print hits as a JSON array, best first.")
    ] = False,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact",
            help="Score every page by MaxSim (late-interaction pages), not the first "
            "stage's candidates: slower, for checks.",
        ),
    ] = False,
    using: Annotated[
        list[str] | None,
        typer.Option(
            "--using",
            help="Search only with these representations of the index (repeatable: "
            "image, text, bm25, late, ...; `polylens status` lists them). Default: all.",
            metavar="NAME",
        ),
    ] = None,
    rerank: Annotated[
        str | None,
        typer.Option(
            "--rerank",
            help="Re-order the first hits with this cross-encoder (ms-marco-minilm, "
            "bge-reranker-base, hf-hub:ORG/NAME, a local directory), with llm (the ask "
            "endpoint's model, listwise), or none.",
            metavar="NAME",
        ),
    ] = None,
) -> None:
    """Search an index by text, by image, or by both."""
    setup_logging(as_json)
    with cli_errors():
        if not (query or "").strip() and image is None:
            raise InputError("give a QUERY, --image FILE, or both")
        from polylens.engine import open_index

        with open_index(
            index_dir or default_index(),
            create=False,
            serve_from_memory=False,
            rerank=rerank,
            store=store,
        ) as idx:
            # The path, not a picture: the engine reads it before any model loads or the
            # store opens (a wrong file is named at once), and recognises an indexed exact
            # copy of the file by its content hash.
            hits = idx.search(
                query,
                image=image,
                k=k,
                kind=[c.value for c in kind] if kind else None,
                exact=exact,
                retrievers=using or None,
            )
    for warning in hits.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if as_json:
        out_console.print_json(json.dumps([h.to_dict() for h in hits]))
        return
    if not hits:
        out_console.print("no matches")
        return
    if hits.no_good_match:
        out_console.print("[bold]No good match[/] — closest results:", highlight=False)
    print_hits(hits, out_console)


def print_hits(hits: list[Hit], console: Console) -> None:
    """One line per hit (rank, confidence, kind, where), its snippet indented below:
    lines that wrap at words, so results read the same at 80 columns, in a pipe or a log.
    Weak hits after good ones come under a line of their own."""
    for rank, hit in enumerate(hits, start=1):
        if hit.weak and rank > 1 and not hits[rank - 2].weak:
            console.print("[dim]weaker matches:[/]", highlight=False)
        where = shown_path(hit.path) + located(hit)
        console.print(
            f"[bold]{rank:>2}[/]  {_confidence(hit)}  {hit.kind:<5}  {escape(where)}",
            highlight=False,
            soft_wrap=True,
        )
        if hit.snippet:
            snippet = " ".join(hit.snippet.split())[:240]
            width = max(40, min(console.width, 100) - 4)
            for line in textwrap.wrap(snippet, width=width):
                console.print(Text("    " + line, style="dim"), soft_wrap=True)


def _confidence(hit: Hit) -> str:
    """The hit's confidence as a percentage; the fused score where it has none."""
    if hit.confidence is None:
        return f"{hit.score:.4f}"
    return f"{round(100 * hit.confidence):>3d}%  "
