"""A one-shot search (the CLI's) reads the index's Arrow mirror: LanceDB is never
imported, the hits are the store's, and a write that changes the store is seen at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST

from polylens.engine import open_index
from polylens.store.base import ITEMS, Filter

pytestmark = pytest.mark.slow

ONE_SHOT = """
import json, sys
from polylens.engine import open_index
with open_index(sys.argv[1], create=False, serve_from_memory=False) as idx:
    hits = idx.search(sys.argv[2], k=5)
print(json.dumps({"lancedb": "lancedb" in sys.modules, "ids": [h.id for h in hits]}))
"""


def _one_shot(index: Path, query: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", ONE_SHOT, str(index), query],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_one_shot_search_reads_the_mirror_and_sees_new_writes(tmp_path: Path, corpus: Path) -> None:
    index = tmp_path / "idx"
    with open_index(index, **FAST) as idx:
        idx.add([corpus])
        expected = [h.id for h in idx.search("gliders over the ridge", k=5)]
    first = _one_shot(index, "gliders over the ridge")
    assert first == {"lancedb": False, "ids": expected}
    note = corpus / "text" / "kites.md"
    note.write_text("# Kites\n\nGliders over the ridge, kites over the beach.\n")
    with open_index(index, **FAST) as idx:
        idx.add([corpus])
        expected = [h.id for h in idx.search("gliders over the ridge", k=5)]
    again = _one_shot(index, "gliders over the ridge")
    assert again == {"lancedb": False, "ids": expected} and again["ids"] != first["ids"]


def test_a_store_moved_since_the_mirror_is_read_directly(tmp_path: Path, corpus: Path) -> None:
    index = tmp_path / "idx"
    with open_index(index, **FAST) as idx:
        idx.add([corpus])
        # a commit after the mirror was written, as by a run killed before its end
        first = idx._store.get(ITEMS, None, ["id"])[0]["id"]
        idx._store.delete(ITEMS, Filter(ids=(first,)))
        expected = [h.id for h in idx.search("gliders over the ridge", k=5)]
    found = _one_shot(index, "gliders over the ridge")
    assert found == {"lancedb": True, "ids": expected}


def test_a_long_lived_one_shot_reader_follows_writes_by_another(
    tmp_path: Path, corpus: Path
) -> None:
    index = tmp_path / "idx"
    with open_index(index, **FAST) as writer:
        writer.add([corpus])
    with open_index(index, create=False, serve_from_memory=False) as reader:
        assert not [h for h in reader.search("gliders over the ridge", k=5) if "kites" in h.path]
        assert reader._mirror is not None  # read from the mirror
        (corpus / "text" / "kites.md").write_text("# Kites\n\nGliders over the ridge.\n")
        with open_index(index, **FAST) as writer:
            writer.add([corpus])
        hits = [(h.id, h.path) for h in reader.search("gliders over the ridge", k=5)]
    with open_index(index, create=False, serve_from_memory=False) as fresh:
        assert hits == [(h.id, h.path) for h in fresh.search("gliders over the ridge", k=5)]
    assert any(path.endswith("kites.md") for _, path in hits)
