"""`polylens status`: what an index holds and how it was built."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from polylens.cli._common import IndexOption, cli_errors, default_index, out_console, setup_logging
from polylens.engine import open_index


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
        with open_index(index_dir or default_index(), create=False) as idx:
            st = idx.status()
    if as_json:
        out_console.print_json(json.dumps(st.to_dict()))
        return
    out_console.print(
        f"[bold]index[/] {st.path}  ({_size(st.size_bytes)}, schema v{st.schema_version})"
    )
    out_console.print(
        f"files: {st.files}   items: " + ", ".join(f"{k} {v}" for k, v in st.items.items())
    )
    models = Table("role", "model", "resolved", "dim", "state", header_style="bold")
    for m in st.models:
        state = "ok" if m.available else f"[yellow]unavailable[/] ({m.reason})"
        models.add_row(m.role, m.name, m.resolved or "", str(m.dim or ""), state)
    out_console.print(models)
    if st.roots:
        out_console.print("roots: " + ", ".join(st.roots))
    if st.last_run:
        r = st.last_run
        out_console.print(
            f"last run: added {r.added}, updated {r.updated}, unchanged {r.unchanged}, moved {r.moved}, "
            f"removed {r.removed}, failed {r.failed}, skipped {r.skipped} in {r.seconds:.1f}s"
        )
        for w in r.warnings:
            out_console.print(f"[yellow]warning:[/] {w}", highlight=False)
