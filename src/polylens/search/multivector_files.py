"""The MaxSim index's files: what :meth:`MultiVectorIndex.save` writes and
:meth:`MultiVectorIndex.load` reads (pooled vectors, first stage, live mask, settings; the
patch store copied in, or named when generations share one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from polylens.search.patch_store import PatchStore

FORMAT_VERSION = 1


def save_index(index: Any, directory: Path, *, copy_patches: bool = True) -> None:
    """Write the index to ``directory``: the pooled vectors, the first stage, the live
    mask and the settings, and the patch store, copied there unless it already lives
    there or ``copy_patches`` is False (then the settings name its folder, relative to
    ``directory``: several saved generations can share one append-only store)."""
    import faiss

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shared = index.patches.directory.resolve() != directory.resolve()
    if shared and copy_patches:
        index.patches = index.patches.copy_to(directory)
        shared = False
    index.pooled.tofile(directory / (index.POOLED + ".tmp"))
    (directory / (index.POOLED + ".tmp")).replace(directory / index.POOLED)
    if index.first is not None:
        faiss.write_index(index.first, str(directory / (index.FIRST_STAGE + ".tmp")))
        (directory / (index.FIRST_STAGE + ".tmp")).replace(directory / index.FIRST_STAGE)
    elif (directory / index.FIRST_STAGE).exists():
        (directory / index.FIRST_STAGE).unlink()
    np.save(directory / index.LIVE, index.live)
    meta = {
        "format": FORMAT_VERSION,
        "pages": len(index),
        "dim": index.patches.dim,
        "segments": index.segments,
        "pooling": index.pooling,
        "codec": index.codec,
        "nprobe": index.nprobe,
        "token_k": index.token_k,
        "shortlist": index.shortlist,
    }
    if shared:
        meta["patches"] = os.path.relpath(index.patches.directory.resolve(), directory.resolve())
    tmp = directory / (index.META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(directory / index.META)


def load_index(cls: Any, directory: Path, *, writable: bool = True) -> Any:
    """Open an index written by :meth:`save`: the patch vectors are memory-mapped, the
    pooled vectors and the first stage are read into RAM. Pages appended to the store
    after the save are dropped from it when ``writable`` (they are a crashed writer's),
    and only hidden otherwise: a reader never changes files a writer may be using."""
    import faiss

    directory = Path(directory)
    meta = json.loads((directory / cls.META).read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{directory}: index format {meta.get('format')} unsupported")
    n = int(meta["pages"])
    where = (directory / meta.get("patches", ".")).resolve()
    patches = PatchStore.open(where, writable=writable)
    if len(patches) < n:
        raise ValueError(f"{directory}: store has {len(patches)} pages, index {n}")
    if len(patches) > n:  # pages appended after the last save
        if writable:
            patches.truncate(n)
        else:
            patches = patches.head(n)
    if not writable:
        patches.pin()
    pooled = np.fromfile(directory / cls.POOLED, dtype=np.float16)
    pooled = pooled.reshape(n, int(meta["segments"]), int(meta["dim"]))
    first = None
    if (directory / cls.FIRST_STAGE).exists():
        first = faiss.read_index(str(directory / cls.FIRST_STAGE))
    return cls(
        patches,
        pooled,
        first,
        pooling=meta["pooling"],
        codec=meta["codec"],
        nprobe=meta["nprobe"],
        token_k=meta["token_k"],
        shortlist=meta["shortlist"],
        live=np.load(directory / cls.LIVE),
    )
