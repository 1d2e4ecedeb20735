"""What a person reads from the CLI: conventional help, output that reads at 80 columns
and in a pipe, failed and skipped files named in the summary."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from polylens.cli import app
from polylens.cli.index_cmd import LISTED, print_summary
from polylens.cli.search_cmd import print_hits
from polylens.cli.status_cmd import print_status
from polylens.types import (
    FileFailure,
    Hit,
    IndexStatus,
    ModelInfo,
    RepresentationInfo,
    RunSummary,
    SearchAvailability,
)

LONG = (
    "model 'openai/clip-vit-base-patch32' is not on this machine and cannot be downloaded "
    "(the model hub cannot be reached). On a machine with internet run `hf download "
    "openai/clip-vit-base-patch32 --local-dir DIR`, copy DIR here and pass it as the model."
)


def _narrow() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=80, force_terminal=False, no_color=True), buffer


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["index", "search", "status", "dupes", "eval", "serve"])
def test_help_is_conventional(command: str) -> None:
    text = _help(command)
    assert not re.search(r"<(bool|str|int|path|list|float)", text), text
    assert "{" not in text.splitlines()[0]  # no `{paths}...` usage pieces
    # every option and argument says what it is for
    click_command = get_command(app).commands[command]  # type: ignore[attr-defined]
    for param in click_command.params:
        assert getattr(param, "help", None), f"{command}: {param.name} has no help"


def test_help_shows_what_each_takes() -> None:
    assert "Usage: polylens index [OPTIONS] PATHS..." in _help("index")
    search = _help("search")
    assert "Usage: polylens search [OPTIONS] [QUERY]" in search
    assert "--kind [image|page|text|video]" in search and "--image FILE" in search
    assert re.search(r"^\s+--json\s+Print", search, re.M)


def test_summary_names_failed_and_skipped_files_up_to_a_limit() -> None:
    summary = RunSummary(
        added=3,
        failed=2,
        skipped=LISTED + 4,
        failures=[FileFailure("/data/broken.jpg", "not a recognised image format")] * 2,
        skipped_files=[
            FileFailure(f"/data/notes-{n}.docx", "content is not a supported type")
            for n in range(LISTED + 4)
        ],
    )
    console, out = _narrow()
    print_summary(summary, console)
    text = out.getvalue()
    assert "3 added" in text and "2 failed" in text and f"{LISTED + 4} skipped" in text
    assert text.count("broken.jpg: not a recognised image format") == 2
    assert "notes-0.docx: content is not a supported type" in text
    assert f"notes-{LISTED - 1}.docx" in text and f"notes-{LISTED}.docx" not in text
    assert "… and 4 more — `--json` lists all" in text


def test_summary_and_hits_read_at_80_columns_without_cut_words() -> None:
    console, out = _narrow()
    print_summary(RunSummary(added=12, updated=1, unchanged=3, seconds=18.2), console)
    long_path = "/home/someone/Documents/projects/2026/quarterly-review/slides-final-v3.pdf"
    hits = [
        Hit("a:p3", long_path, "page", 3, 0.0321, snippet="fixed conversion rates " * 20),
        Hit("b:i", "/tmp/cat.jpg", "image", None, 0.0164),
    ]
    print_hits(hits, console)
    text = out.getvalue()
    assert "…" not in text.splitlines()[0]  # no "updat… uncha…" headers
    for word in ("added", "updated", "unchanged", "moved", "removed", "failed", "skipped"):
        assert word in text
    assert f"{long_path}  p.3" in text  # a path is never broken in the middle
    snippet_lines = [line for line in text.splitlines() if line.startswith("    fixed")]
    assert snippet_lines and all(len(line) <= 80 for line in snippet_lines)


def _printed_status(status: IndexStatus, monkeypatch: pytest.MonkeyPatch) -> str:
    import polylens.cli.status_cmd as status_cmd

    console, out = _narrow()
    monkeypatch.setattr(status_cmd, "out_console", console)
    print_status(status)
    return out.getvalue()


def test_status_gives_a_short_reason_in_the_table_and_the_full_one_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status = IndexStatus(
        path="/tmp/idx",
        files=3,
        items={"image": 1, "page": 0, "text": 2},
        models=[
            ModelInfo(
                "image",
                "clip-b32",
                "hf-hub:x",
                None,
                False,
                LONG,
                "not on this machine; hub unreachable",
            ),
            ModelInfo("text", "minilm", "package:x", 384, True),
            ModelInfo("ocr", "off", None, None, False),
        ],
        roots=["/data"],
        size_bytes=1000,
        schema_version=1,
        last_run=RunSummary(
            added=3,
            warnings=["image model clip-b32 unavailable (not on this machine; hub unreachable)"],
        ),
        image_search=SearchAvailability(False, "the index has no image embeddings"),
    )
    text = _printed_status(status, monkeypatch)
    table_rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(table_rows) == 3  # one row per model: the reason does not wrap the table
    assert any("not on this machine; hub unreachable" in row for row in table_rows)
    flat = " ".join(text.split())
    assert flat.count("hf download") == 1  # the full reason, once
    assert "warning: image model clip-b32 unavailable" not in flat  # not repeated
    assert "search by image: unavailable" in flat


def test_status_lists_the_representations_without_wrapping_at_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reason = "not on this machine; hub unreachable"
    status = IndexStatus(
        path="/tmp/idx",
        files=3,
        items={"image": 1, "page": 0, "text": 2},
        models=[
            ModelInfo("image", "clip-b32", "hf-hub:x", None, False, LONG, reason),
            ModelInfo("text", "minilm", "package:x", 384, True),
            ModelInfo("ocr", "rapidocr-onnxruntime", None, None, True),
        ],
        roots=["/data"],
        size_bytes=1000,
        schema_version=1,
        last_run=None,
        representations=[
            RepresentationInfo(
                "image", "image embeddings", ("image",), "clip-b32", "hf-hub:x", None, False, reason
            ),
            RepresentationInfo(
                "text", "text embeddings", ("text",), "minilm", "package:x", 384, True
            ),
            RepresentationInfo(
                "bm25", "BM25", ("text",), None, "bm25-snowball-english", None, True
            ),
            RepresentationInfo(
                "phash",
                "near-duplicate hashes",
                ("image",),
                None,
                "dct-phash-64-v1",
                None,
                True,
                rows=1,
            ),
        ],
    )
    text = _printed_status(status, monkeypatch)
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [
        "image",
        "text",
        "bm25",
        "phash",
        "(ocr)",
    ]
    assert any(reason in row for row in rows)  # one line each: nothing wraps


def test_a_wide_table_is_not_cut_when_the_output_is_not_a_terminal() -> None:
    import io

    from rich.console import Console
    from rich.table import Table

    from polylens.cli._common import print_table

    table = Table(*[f"recall@{k}" for k in (1, 5, 10, 100)], "configuration-name", "p50 ms")
    table.add_row("0.3000", "0.6667", "0.8333", "1.0000", "hybrid-text-and-late", "188.4")
    buffer = io.StringIO()
    console = Console(file=buffer, width=40, force_terminal=False)
    print_table(table, console)
    text = buffer.getvalue()
    assert "…" not in text and "recall@100" in text and "hybrid-text-and-late" in text
