"""A third-party representation, installed as a real distribution (a dist-info folder on
sys.path) so that importlib.metadata finds it through the entry-point group."""

from __future__ import annotations

import textwrap
from pathlib import Path

from polylens.representations.registry import ENTRY_POINTS

PLUGIN = '''
from typing import ClassVar

import pyarrow as pa

from polylens.representations.base import Needs, Ranked, Representation
from polylens.store.schema import representation_schema

SCHEMA = representation_schema(pa.field("words", pa.int32(), nullable=False))


class Brevity(Representation):
    """Short items first: a representation with its own collection and no model."""

    name = "brevity"
    title = "word counts"
    kinds = ("text", "page", "image")
    needs = Needs(text=True)
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    default = False
    collection = "brevity"
    eval_name = "brevity"
    encoded = 0

    def ensure_storage(self, store, model):
        store.ensure_collection(self.collection, schema=SCHEMA)

    def encode(self, model, units, config, clock):
        Brevity.encoded += len(units)
        return [
            {"id": u.item_id, "item_id": u.item_id, "content_hash": u.content_hash,
             "kind": u.kind, "words": len(u.text.split())}
            for u in units if u.text.strip()
        ]

    def retrieve(self, query, ctx):
        rows = ctx.store.get(self.collection, ctx.where, ["item_id", "words"])
        rows.sort(key=lambda r: (r["words"], r["item_id"]))
        top = rows[: ctx.depth]
        return Ranked([r["item_id"] for r in top], [-float(r["words"]) for r in top])


def register(registry):
    registry.add(Brevity)
'''


def install_plugin(root: Path) -> None:
    """A real distribution on sys.path: importlib.metadata finds its entry point."""
    root.mkdir(parents=True)
    (root / "polylens_brevity.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "polylens_brevity-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: polylens-brevity\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINTS}]\nbrevity = polylens_brevity:register\n"
    )
