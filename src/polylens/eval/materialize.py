"""Lay a dataset's corpus out as files, so evaluation indexes it as a user's folder would be.

Text documents become ``.txt`` files (title, blank line, text); image and PDF documents
are linked (or copied where links are impossible); page images stored inside a dataset
are written out. A mapping file remembers which file is which document.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from polylens.errors import InputError
from polylens.eval.datasets import EvalDataset

MAPPING_FILE = "documents.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(doc_id: str, suffix: str) -> str:
    safe = _UNSAFE.sub("_", doc_id)[:80] or "doc"
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=4).hexdigest()
    return f"{safe}-{digest}{suffix}"


def materialize(dataset: EvalDataset, folder: Path) -> dict[str, str]:
    """Write the corpus under ``folder``; return {absolute file path: doc id}.

    Idempotent: unchanged documents keep their files (and so their index entries)."""
    folder.mkdir(parents=True, exist_ok=True)
    mapping: dict[str, str] = {}
    for doc_id, doc in dataset.corpus.items():
        if doc.image_bytes is not None:
            target = folder / _file_name(doc_id, ".img")
            if not target.exists() or target.stat().st_size != len(doc.image_bytes):
                target.write_bytes(doc.image_bytes)
        elif doc.path is not None:
            if not doc.path.is_file():
                raise InputError(f"document {doc_id}: file {doc.path} does not exist")
            target = folder / _file_name(doc_id, doc.path.suffix or ".bin")
            if not target.exists():
                try:
                    os.symlink(doc.path.resolve(), target)
                except OSError:
                    shutil.copyfile(doc.path, target)
        else:
            body = f"{doc.title}\n\n{doc.text}" if doc.title else doc.text
            target = folder / _file_name(doc_id, ".txt")
            data = body.encode("utf-8")
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
        mapping[str(target.absolute())] = doc_id
    expected = set(mapping)
    for stale in folder.iterdir():
        if stale.name != MAPPING_FILE and str(stale.absolute()) not in expected:
            stale.unlink()
    (folder.parent / MAPPING_FILE).write_text(json.dumps(mapping, indent=0), encoding="utf-8")
    return mapping
