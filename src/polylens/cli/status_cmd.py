"""`polylens status`: what an index holds and how it was built."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from polylens.cli._common import (
    IndexOption,
    StoreOption,
    cli_errors,
    default_index,
    out_console,
    setup_logging,
)
from polylens.types import IndexStatus


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def status(
    index_dir: IndexOption = None,  # type: ignore[assignment]
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print status as JSON.")] = False,
) -> None:
    """Item counts by kind, models, size on disk, and the last run's summary."""
    setup_logging(as_json)
    with cli_errors():
        from polylens.engine import open_index

        with open_index(index_dir or default_index(), create=False, store=store) as idx:
            st = idx.status()
    if as_json:
        out_console.print_json(json.dumps(st.to_dict()))
        return
    print_status(st)


def _state(available: bool, reason: str | None, summary: str | None) -> str:
    if summary == "disabled" or (not available and not reason):
        return "off"
    if available and not reason:
        return "ok"
    return f"[yellow]{summary or reason}[/]"


def _table(st: IndexStatus) -> Table:
    """One row per representation (its model, or what it computes), then OCR; an index
    recorded before representations were listed shows its models."""
    models = {m.role: m for m in st.models}
    if not st.representations:
        table = Table("role", "model", "dim", "state", header_style="bold")
        for m in st.models:
            table.add_row(
                m.role, m.name, str(m.dim or ""), _state(m.available, m.reason, m.summary)
            )
        return table
    table = Table("name", "model", "dim", "state", title="representations", header_style="bold")
    for rep in st.representations:
        model = models.get(rep.name)
        if model is not None:
            state = _state(model.available, model.reason, model.summary)
            table.add_row(rep.name, model.name, str(model.dim or ""), state)
        else:
            state = _state(rep.available, rep.reason, None)
            table.add_row(rep.name, rep.resolved or "", str(rep.dim or ""), state)
    ocr = models.get("ocr")
    if ocr is not None:
        table.add_row("(ocr)", ocr.name, "", _state(ocr.available, ocr.reason, ocr.summary))
    return table


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
    out.print(_table(st))
    for rep in st.representations:
        if rep.bytes and rep.rows:
            out.print(
                f"{rep.name}: {rep.rows} {'item' if rep.rows == 1 else 'items'}, "
                f"{_size(rep.bytes)} of search files ({_size(rep.bytes // rep.rows)} an item)",
                highlight=False,
            )
    if st.query_towers:
        towers = ", ".join(f"{name} {_size(size)}" for name, size in st.query_towers.items())
        out.print(f"query encoders (ONNX: searches without torch): {towers}", highlight=False)
    for name, enc in st.image_encoders.items():
        timed = ""
        if enc.get("torch_ms") and enc.get("onnx_ms"):
            timed = (
                f", timed {enc['onnx_ms']:.1f} ms an image against torch's {enc['torch_ms']:.1f}"
            )
        out.print(
            f"{name} encoder runs on {'ONNX Runtime' if enc['runtime'] == 'onnx' else 'torch'} "
            f"({enc['precision']}{timed})",
            highlight=False,
        )
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
    if st.store:
        out.print(f"store: {st.store}", highlight=False, soft_wrap=True)
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
