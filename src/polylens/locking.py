"""One writer per index: an advisory lock file, refused at once (not waited on)."""

from __future__ import annotations

import errno
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polylens.errors import IndexLockedError, StoreError


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` locked for the block; IndexLockedError if another process holds it."""
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise StoreError(f"the index directory {path.parent} is not writable: {exc}") from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise IndexLockedError(
                    f"another process is writing to the index at {path.parent}"
                ) from exc
            raise
        yield
    finally:
        handle.close()
