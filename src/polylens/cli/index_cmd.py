"""`polylens index PATH...`: add or refresh files and folders in an index."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from polylens.cli._common import (
    IndexOption,
    cli_errors,
    default_index,
    err_console,
    out_console,
    setup_logging,
)
from polylens.engine import open_index
from polylens.ingest.pipeline import ProgressEvents
from polylens.types import RunSummary


class _RichEvents(ProgressEvents):
    """Files done as the bar; items/s in the description; failures printed above it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("scanning", total=None, rate="")
        self.items = 0
        self.started = time.perf_counter()

    def scanning(self, files_seen: int) -> None:
        self.progress.update(self.task, description=f"scanning ({files_seen} files)")

    def planned(self, files_to_encode: int) -> None:
        self.started = time.perf_counter()
        self.progress.update(self.task, total=files_to_encode, completed=0, description="indexing")

    def units_encoded(self, count: int) -> None:
        self.items += count
        rate = self.items / max(1e-6, time.perf_counter() - self.started)
        self.progress.update(self.task, rate=f"{self.items} items, {rate:.1f} items/s")

    def file_done(self, path: str, items: int) -> None:
        self.progress.advance(self.task)

    def file_failed(self, path: str, reason: str) -> None:
        self.progress.console.print(f"[red]failed[/] {path}: {reason}", highlight=False)

    def finishing(self, what: str) -> None:
        self.progress.update(self.task, description=what)


def _summary_table(summary: RunSummary) -> Table:
    table = Table(title="index run", show_header=True, header_style="bold")
    for column in (
        "added",
        "updated",
        "unchanged",
        "moved",
        "removed",
        "failed",
        "skipped",
        "items",
        "seconds",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(getattr(summary, c))
            for c in ("added", "updated", "unchanged", "moved", "removed", "failed", "skipped")
        ),
        str(summary.items_written),
        f"{summary.seconds:.1f}",
    )
    return table


def index(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to index (recursive).")],
    index_dir: IndexOption = None,  # type: ignore[assignment]
    image_model: Annotated[
        str | None,
        typer.Option(
            help="Image-text model: alias (clip-b32, siglip-b16, ...), hf-hub:ORG/NAME, a local dir, or none."
        ),
    ] = None,
    text_model: Annotated[
        str | None,
        typer.Option(
            help="Text embedder: minilm (bundled), hf-hub:ORG/NAME, a local dir, or none."
        ),
    ] = None,
    ocr: Annotated[
        bool | None, typer.Option("--ocr/--no-ocr", help="OCR images and scanned pages.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Items per model forward pass.")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Decode/OCR threads.")] = None,
    rehash: Annotated[
        bool, typer.Option(help="Hash every file even if size and mtime are unchanged.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar; summary only on failure.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Index files and folders. Re-runs only do new or changed work; removed files leave the index."""
    setup_logging(True)  # warnings come back in the summary and are printed after it
    with cli_errors():
        idx = open_index(
            index_dir or default_index(),
            image_model=image_model,
            text_model=text_model,
            ocr=ocr,
            device=device,
            batch_size=batch_size,
            workers=workers,
        )
        with idx:
            if quiet or as_json:
                summary = idx.add([str(p) for p in paths], rehash=rehash)
            else:
                progress = Progress(
                    SpinnerColumn(),
                    TextColumn("[progress.description]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("files"),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    console=err_console,
                    transient=True,
                )
                with progress:
                    summary = idx.add(
                        [str(p) for p in paths], events=_RichEvents(progress), rehash=rehash
                    )
    if as_json:
        out_console.print_json(json.dumps(summary.to_dict()))
    elif not quiet:
        out_console.print(_summary_table(summary))
        for warning in summary.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    elif summary.failed:
        for failure in summary.failures:
            err_console.print(f"failed {failure.path}: {failure.reason}", highlight=False)
