"""`polylens dupes`: exact copies and near-duplicate pictures in an index."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from polylens.cli._common import (
    IndexOption,
    StoreOption,
    cli_errors,
    default_index,
    out_console,
    setup_logging,
    shown_path,
)
from polylens.types import DuplicateGroup


def dupes(
    index_dir: IndexOption = None,  # type: ignore[assignment]
    store: StoreOption = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=32,
            help="Most bits (of 64) two pictures' perceptual hashes may differ by, for every "
            "kind [default: 14 for photos, 8 for pages].",
            metavar="N",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
) -> None:
    """Groups of duplicates: exact copies (same content), then near-duplicate pictures
    (resized, recompressed, slightly cropped or brightened)."""
    setup_logging(as_json)
    with cli_errors():
        from polylens.engine import open_index

        with open_index(index_dir or default_index(), create=False, store=store) as idx:
            groups = idx.duplicates(threshold=threshold)
            has_hashes = "phash" in idx.representations
    if as_json:
        out_console.print_json(json.dumps([g.to_dict() for g in groups]))
        return
    print_groups(groups, has_hashes=has_hashes)


def print_groups(groups: list[DuplicateGroup], *, has_hashes: bool) -> None:
    out = out_console
    exact = [g for g in groups if g.tier == "exact"]
    near = [g for g in groups if g.tier == "near"]
    out.print(f"exact copies: {len(exact)} group(s)", highlight=False)
    for group in exact:
        out.print(f"  same content in {len(group.items)} files:", highlight=False)
        for item in group.items:
            out.print(f"    {shown_path(item.path)}", highlight=False, soft_wrap=True)
    if not has_hashes:
        out.print(
            "near-duplicates: not searched — this index has no perceptual hashes "
            "(`polylens index PATHS --with phash` adds them)",
            highlight=False,
            soft_wrap=True,
        )
        return
    out.print(f"near-duplicates: {len(near)} group(s)", highlight=False)
    for group in near:
        out.print(f"  {len(group.items)} pictures (bits apart from the first):", highlight=False)
        for item in group.items:
            page = f"  p.{item.page}" if item.page else ""
            out.print(
                f"    {item.distance:>2}  {shown_path(item.path)}{page}",
                highlight=False,
                soft_wrap=True,
            )
