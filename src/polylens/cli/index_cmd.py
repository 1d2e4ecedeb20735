"""`polylens index PATH...`: add or refresh files and folders in an index."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from polylens.cli._common import (
    IndexOption,
    StoreOption,
    cli_errors,
    default_index,
    err_console,
    out_console,
    setup_logging,
    shown_path,
)
from polylens.ingest.events import ProgressEvents
from polylens.types import RunSummary

LISTED = 10
"""Failed and skipped files named in the summary; `--json` lists every one."""


class _RichEvents(ProgressEvents):
    """Each phase as it happens (scanning, loading a model, reading and encoding, writing,
    filling in vectors); files or items done as the bar; failures printed above it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None, rate="", unit="")
        self.items = 0
        self.started = time.perf_counter()

    def phase(self, what: str, total: int | None = None) -> None:
        unit = "" if total is None else ("files" if what == "reading and encoding" else "items")
        if total is not None:
            self.started = time.perf_counter()
            self.items = 0
        # A fresh task per phase: a phase without a count shows no stale "0/9".
        self.progress.remove_task(self.task)
        self.task = self.progress.add_task(what, total=total, unit=unit, rate="")

    def scanning(self, files_seen: int) -> None:
        self.progress.update(self.task, description=f"scanning ({files_seen} files)")

    def units_encoded(self, count: int) -> None:
        self.items += count
        rate = self.items / max(1e-6, time.perf_counter() - self.started)
        task = self.progress.tasks[-1]
        if task.fields.get("unit") == "items":
            self.progress.advance(self.task, count)
        self.progress.update(self.task, rate=f"{self.items} items, {rate:.1f}/s")

    def file_done(self, path: str, items: int) -> None:
        self.progress.advance(self.task)

    def file_failed(self, path: str, reason: str) -> None:
        self.progress.console.print(
            f"[red]failed[/] {shown_path(path)}: {reason}", highlight=False, soft_wrap=True
        )


def print_summary(summary: RunSummary, console: Console) -> None:
    """The run in a few lines that read at any width: counts, then what went wrong."""
    counts = ", ".join(
        f"{getattr(summary, name)} {name}"
        for name in ("added", "updated", "unchanged", "moved", "removed", "failed", "skipped")
    )
    extra = f", {summary.items_backfilled} back-filled," if summary.items_backfilled else ""
    console.print(
        f"[bold]indexed[/] {counts}; {summary.items_written} items written{extra} "
        f"in {summary.seconds:.1f} s",
        highlight=False,
        soft_wrap=True,
    )
    for title, files in (("failed", summary.failures), ("skipped", summary.skipped_files)):
        if not files:
            continue
        console.print(f"{title}:", highlight=False)
        for failure in files[:LISTED]:
            console.print(
                f"  {shown_path(failure.path)}: {failure.reason}", highlight=False, soft_wrap=True
            )
        if len(files) > LISTED:
            console.print(
                f"  … and {len(files) - LISTED} more — `--json` lists all", highlight=False
            )


def _names(values: list[str] | None) -> tuple[str, ...] | None:
    """``--with a --with b`` and ``--with a,b`` alike."""
    if not values:
        return None
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


def index(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files and folders to index (recursive; .polylensignore files are honoured).",
            metavar="PATHS",
            show_default=False,
        ),
    ],
    index_dir: IndexOption = None,  # type: ignore[assignment]
    store: StoreOption = None,
    image_model: Annotated[
        str | None,
        typer.Option(
            help="Image-text model: alias (clip-b32, siglip-b16, ...), hf-hub:ORG/NAME, a local dir, or none.",
            metavar="MODEL",
        ),
    ] = None,
    text_model: Annotated[
        str | None,
        typer.Option(
            help="Text embedder: minilm (bundled), hf-hub:ORG/NAME, a local dir, or none.",
            metavar="MODEL",
        ),
    ] = None,
    page_model: Annotated[
        str | None,
        typer.Option(
            help="Late-interaction page model (colqwen2, colpali, hf-hub:ORG/NAME, a local "
            "dir): PDF pages and scans as patch vectors, searched by MaxSim.",
            metavar="MODEL",
        ),
    ] = None,
    speech_model: Annotated[
        str | None,
        typer.Option(
            help="Transcribe videos' speech (whisper-tiny, whisper-small, hf-hub:ORG/NAME, a "
            "local dir, or none: the default).",
            metavar="MODEL",
        ),
    ] = None,
    with_: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            help="Add a representation (repeatable; image, text, bm25, phash, or a plugin's); "
            "items already indexed get it too.",
            metavar="NAME",
        ),
    ] = None,
    without: Annotated[
        list[str] | None,
        typer.Option(
            "--without",
            help="Leave a representation out (repeatable); an existing one's data is dropped.",
            metavar="NAME",
        ),
    ] = None,
    ocr: Annotated[
        bool | None, typer.Option("--ocr/--no-ocr", help="OCR images and scanned pages.")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.", metavar="DEVICE")
    ] = None,
    encoder_runtime: Annotated[
        str | None,
        typer.Option(
            help="Image model on a CPU: auto (ONNX Runtime when a timed batch is faster), "
            "onnx, or torch.",
            metavar="RUNTIME",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="fp32, or int8 (opt-in: faster, coarser; try `polylens eval --precision "
            "int8` first).",
            metavar="P",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Items per model forward pass.", metavar="N")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Decode/OCR threads.", metavar="N")
    ] = None,
    rehash: Annotated[
        bool,
        typer.Option("--rehash", help="Hash every file even if size and mtime are unchanged."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar; summary only on failure.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Index files and folders. Re-runs only do new or changed work; removed files leave the index."""
    setup_logging(True)  # warnings come back in the summary and are printed after it
    with cli_errors():
        from polylens.engine import open_index

        idx = open_index(
            index_dir or default_index(),
            store=store,
            image_model=image_model,
            text_model=text_model,
            page_model=page_model,
            speech_model=speech_model,
            with_=_names(with_),
            without=_names(without),
            ocr=ocr,
            device=device,
            encoder_runtime=encoder_runtime,
            precision=precision,
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
                    BarColumn(bar_width=20),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[unit]}"),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                    console=err_console,
                    transient=True,
                )
                with progress:
                    summary = idx.add(
                        [str(p) for p in paths], events=_RichEvents(progress), rehash=rehash
                    )
    if as_json:
        out_console.print_json(json.dumps(summary.to_dict()))
        return
    if not quiet:
        print_summary(summary, out_console)
    elif summary.failed:
        for failure in summary.failures:
            err_console.print(
                f"failed {shown_path(failure.path)}: {failure.reason}",
                highlight=False,
                soft_wrap=True,
            )
    if not quiet:
        for warning in summary.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
