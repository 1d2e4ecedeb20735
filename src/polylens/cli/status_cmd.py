"""`polylens status`: what an index holds and how it was built."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from polylens.cli._common import IndexOption, cli_errors, default_index, out_console, setup_logging
from polylens.types import IndexStatus


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def status(
    index_dir: IndexOption = None,  # type: ignore[assignment]
    as_json: Annotated[bool, typer.Option("--json", help="Print status as JSON.")] = False,
) -> None:
    """Item counts by kind, models, size on disk, and the last run's summary."""
    setup_logging(as_json)
    with cli_errors():
        from polylens.engine import open_index

        with open_index(index_dir or default_index(), create=False) as idx:
            st = idx.status()
    if as_json:
        out_console.print_json(json.dumps(st.to_dict()))
        return
    print_status(st)


def print_status(st: IndexStatus) -> None:
    """Readable at 80 columns: short reasons in the table, each full reason once below."""
    out = out_console
    out.print(
        f"[bold]index[/] {st.path}  ({_size(st.size_bytes)}, schema v{st.schema_version})",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"files: {st.files}   items: " + ", ".join(f"{k} {v}" for k, v in st.items.items()),
        highlight=False,
    )
    models = Table("role", "model", "dim", "state", header_style="bold")
    for m in st.models:
        if m.summary == "disabled" or (not m.available and not m.reason):
            state = "off"
        elif m.available and not m.reason:
            state = "ok"
        else:
            state = f"[yellow]{m.summary or m.reason}[/]"
        models.add_row(m.role, m.name, str(m.dim or ""), state)
    out.print(models)
    explained = []
    for m in st.models:
        if m.reason and m.reason != m.summary:
            out.print(
                f"[yellow]{m.role} model {m.name}:[/] {m.reason}", highlight=False, soft_wrap=True
            )
            explained.append(f"{m.role} model {m.name} unavailable")
    if not st.image_search.available:
        out.print(
            f"search by image: unavailable — {st.image_search.reason}",
            highlight=False,
            soft_wrap=True,
        )
    if st.roots:
        out.print("roots: " + ", ".join(st.roots), highlight=False, soft_wrap=True)
    if st.last_run:
        r = st.last_run
        out.print(
            f"last run: added {r.added}, updated {r.updated}, unchanged {r.unchanged}, "
            f"moved {r.moved}, removed {r.removed}, failed {r.failed}, skipped {r.skipped} "
            f"in {r.seconds:.1f} s",
            highlight=False,
            soft_wrap=True,
        )
        for w in r.warnings:
            if not any(w.startswith(prefix) for prefix in explained):
                out.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
