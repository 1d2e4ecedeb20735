"""The patch store: every page's late-interaction vectors in one memory-mapped fp16 file.

Written at ingest and read by :class:`polylens.search.multivector_index.MultiVectorIndex`
for its exact rerank; a memmap, so the corpus may exceed RAM. The module imports only
numpy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["PatchStore"]


class PatchStore:
    """All pages' vectors, back to back in one fp16 file read through ``np.memmap``.

    Page ``i`` is rows ``offsets[i]:offsets[i + 1]`` of the file. Files in ``directory``:
    ``patches.f16`` (raw fp16, ``rows x dim``), ``offsets.i64`` (raw int64, pages + 1) and
    ``patches.json`` (dim). Appending writes the vectors first and the offsets last, so a
    crash mid-append leaves the store as it was (the tail is overwritten next time).
    ``head(n)`` is a read-only view of the first ``n`` pages."""

    VECTORS = "patches.f16"
    OFFSETS = "offsets.i64"
    META = "patches.json"

    def __init__(self, directory: Path, dim: int, offsets: np.ndarray, *, writable: bool) -> None:
        self.directory = Path(directory)
        self.dim = int(dim)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self.writable = writable
        self._mm: np.memmap | None = None
        self._fd: int | None = None  # for prefetch()

    # construction
    @classmethod
    def create(cls, directory: Path, dim: int) -> PatchStore:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / cls.OFFSETS).exists():
            raise FileExistsError(f"{directory} already holds a patch store")
        (directory / cls.VECTORS).write_bytes(b"")
        np.zeros(1, np.int64).tofile(directory / cls.OFFSETS)
        (directory / cls.META).write_text(json.dumps({"dim": int(dim), "dtype": "float16"}))
        return cls(directory, dim, np.zeros(1, np.int64), writable=True)

    @classmethod
    def open(cls, directory: Path, *, writable: bool = True) -> PatchStore:
        directory = Path(directory)
        meta = json.loads((directory / cls.META).read_text())
        offsets = np.fromfile(directory / cls.OFFSETS, dtype=np.int64)
        if len(offsets) == 0 or offsets[0] != 0:
            raise ValueError(f"{directory / cls.OFFSETS} is not a patch-store offsets file")
        return cls(directory, meta["dim"], offsets, writable=writable)

    @classmethod
    def from_pages(cls, directory: Path, pages: Sequence[np.ndarray], dim: int | None = None):
        if dim is None:
            if not len(pages):
                raise ValueError("dim is needed for an empty store")
            dim = int(np.shape(pages[0])[1])
        store = cls.create(directory, dim)
        store.append(pages)
        return store

    def head(self, n: int) -> PatchStore:
        """Read-only view of the first ``n`` pages (shares the file)."""
        n = int(n)
        if not 0 <= n <= len(self):
            raise ValueError(f"head({n}) of a store with {len(self)} pages")
        return PatchStore(self.directory, self.dim, self._offsets[: n + 1], writable=False)

    # reading
    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets

    @property
    def n_vectors(self) -> int:
        return int(self._offsets[-1])

    @property
    def vectors(self) -> np.ndarray:
        """All rows, ``(n_vectors, dim)`` fp16, memory-mapped read-only."""
        if self._mm is None or len(self._mm) != self.n_vectors:
            if self.n_vectors == 0:
                return np.zeros((0, self.dim), np.float16)
            self._mm = np.memmap(
                self.directory / self.VECTORS,
                dtype=np.float16,
                mode="r",
                shape=(self.n_vectors, self.dim),
            )
        return self._mm

    def page(self, i: int) -> np.ndarray:
        return self.vectors[self._offsets[i] : self._offsets[i + 1]]

    def prefetch(self, rows: np.ndarray) -> None:
        """Ask the kernel to start reading ``rows``' vectors into the page cache (one
        ``posix_fadvise(WILLNEED)`` per page; returns at once). Reading many scattered pages
        one after the other costs one disk round trip each; prefetched, the reads overlap."""
        if not hasattr(os, "posix_fadvise") or len(rows) == 0 or self.n_vectors == 0:
            return
        if self._fd is None:
            self._fd = os.open(self.directory / self.VECTORS, os.O_RDONLY)
        row_bytes = self.dim * 2
        rows = np.asarray(rows, dtype=np.int64)
        lo = (self._offsets[rows] * row_bytes).tolist()
        hi = (self._offsets[rows + 1] * row_bytes).tolist()
        for a, b in zip(lo, hi, strict=True):
            os.posix_fadvise(self._fd, a, b - a, os.POSIX_FADV_WILLNEED)

    def pin(self) -> PatchStore:
        """Open the memory map and the file handle now, so this (read-only) view keeps
        reading its file after a writer removes or replaces it (Linux keeps an open
        file's data until the last handle closes)."""
        _ = self.vectors
        if self._fd is None and self.n_vectors:
            self._fd = os.open(self.directory / self.VECTORS, os.O_RDONLY)
        return self

    def release(self) -> None:
        """Drop this object's memory map and file handle (both reopen on the next read), so
        the kernel may evict the file's pages."""
        self._mm = None
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()

    def lengths(self) -> np.ndarray:
        return np.diff(self._offsets)

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of ``rows`` back to back (fp16, a copy) and their starts (len + 1)."""
        rows = np.asarray(rows, dtype=np.int64)
        lo, hi = self._offsets[rows], self._offsets[rows + 1]
        starts = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(hi - lo, out=starts[1:])
        out = np.empty((int(starts[-1]), self.dim), np.float16)
        mm = self.vectors
        for j in range(len(rows)):
            out[starts[j] : starts[j + 1]] = mm[lo[j] : hi[j]]
        return out, starts

    # writing
    def append(self, pages: Sequence[np.ndarray]) -> np.ndarray:
        """Append pages (each (n_i >= 1, dim)); returns their rows."""
        if len(pages) == 0:
            return np.zeros(0, np.int64)
        arrays = [np.asarray(p) for p in pages]
        for i, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[1] != self.dim:
                raise ValueError(f"page {i}: shape {a.shape}, expected (n, {self.dim})")
            if len(a) == 0:
                raise ValueError(f"page {i} has no vectors")
        lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
        flat = np.concatenate(arrays, axis=0)
        return self.append_flat(flat, lengths)

    def append_flat(self, vectors: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Append pages given as one ``(sum(lengths), dim)`` block; returns their rows."""
        if not self.writable:
            raise PermissionError("this patch store is a read-only view")
        lengths = np.asarray(lengths, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be (n, {self.dim}), got {vectors.shape}")
        if int(lengths.sum()) != len(vectors) or np.any(lengths <= 0):
            raise ValueError("lengths must be >= 1 and sum to the number of vectors")
        first = len(self)
        with open(self.directory / self.VECTORS, "r+b") as fh:
            fh.seek(self.n_vectors * self.dim * 2)
            fh.write(vectors.tobytes())
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        new_offsets = self.n_vectors + np.cumsum(lengths)
        with open(self.directory / self.OFFSETS, "r+b") as fh:
            fh.seek(len(self._offsets) * 8)
            fh.write(new_offsets.astype(np.int64).tobytes())
            fh.truncate()
        self._offsets = np.concatenate([self._offsets, new_offsets])
        self._mm = None
        return np.arange(first, len(self), dtype=np.int64)

    def truncate(self, n: int) -> None:
        """Forget pages ``n`` and later (their bytes are overwritten by the next append)."""
        if not self.writable:
            raise PermissionError("this patch store is a read-only view")
        n = int(n)
        if not 0 <= n <= len(self):
            raise ValueError(f"truncate({n}) of a store with {len(self)} pages")
        self._offsets = self._offsets[: n + 1].copy()
        self._offsets.tofile(self.directory / self.OFFSETS)
        self._mm = None

    def nbytes(self) -> int:
        return self.n_vectors * self.dim * 2 + self._offsets.nbytes

    def copy_to(self, directory: Path) -> PatchStore:
        """Copy the first ``len(self)`` pages into a new store in ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        src = self.directory / self.VECTORS
        with open(src, "rb") as fi, open(directory / self.VECTORS, "wb") as fo:
            remaining = self.n_vectors * self.dim * 2
            while remaining:
                chunk = fi.read(min(remaining, 64 << 20))
                if not chunk:
                    raise OSError(f"{src} is shorter than its offsets say")
                fo.write(chunk)
                remaining -= len(chunk)
        self._offsets.tofile(directory / self.OFFSETS)
        shutil.copyfile(self.directory / self.META, directory / self.META)
        return PatchStore.open(directory)
