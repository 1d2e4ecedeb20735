"""Walk the user's paths and fingerprint files: what is there, and has it changed?

A file's identity is the hash of its content; (size, mtime) only lets a re-run skip
re-hashing a file that is evidently untouched, as git does.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from polylens.errors import InputError

HASH_CHUNK = 1 << 20

# Extensions that promise a supported type: a file with one of these whose content is
# not that type is reported as failed, not silently skipped.
MEDIA_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .gif .bmp .tif .tiff .webp .pdf .txt .md .markdown .text".split()
)


@dataclass(frozen=True)
class FoundFile:
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WalkProblem:
    path: str
    reason: str


def normalise_root(path: str | os.PathLike[str]) -> str:
    """Absolute, without resolving symlinks, so indexed paths read like the user's."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def walk(roots: Sequence[str], *, exclude: Sequence[str] = ()) -> Iterator[FoundFile | WalkProblem]:
    """Regular files under ``roots`` (sorted, hidden entries skipped, links not followed
    into directories, so symlink loops cannot trap the walk)."""
    excluded = {normalise_root(e) for e in exclude}
    seen: set[str] = set()
    for root in roots:
        root = normalise_root(root)
        try:
            st = os.stat(root)
        except OSError as exc:
            raise InputError(f"cannot read {root}: {exc.strerror or exc}") from exc
        if not _utf8(root):
            raise InputError(f"{_shown(root)}: the path is not valid UTF-8; rename it to index it")
        if stat.S_ISREG(st.st_mode):
            if root not in seen:
                seen.add(root)
                yield FoundFile(root, st.st_size, st.st_mtime_ns)
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield WalkProblem(root, "not a regular file or directory")
            continue
        yield from _walk_dir(root, excluded, seen)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: str) -> str:
    """A printable stand-in for a name with undecodable bytes (shown as \\xNN)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _walk_dir(root: str, excluded: set[str], seen: set[str]) -> Iterator[FoundFile | WalkProblem]:
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield WalkProblem(directory, f"cannot list directory: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = entry.path
            if path in excluded:
                continue
            if not _utf8(path):
                # The store keeps names as UTF-8 text; such a name would fail the whole run.
                yield WalkProblem(
                    _shown(path), "file name is not valid UTF-8; rename it to index it"
                )
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(path)
                    continue
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                yield WalkProblem(path, f"cannot stat: {exc.strerror or exc}")
                continue
            if entry.is_symlink() and stat.S_ISDIR(st.st_mode):
                continue  # directory symlinks are not followed (loops, escapes)
            if not stat.S_ISREG(st.st_mode):
                continue
            if path not in seen:
                seen.add(path)
                yield FoundFile(path, st.st_size, st.st_mtime_ns)
        stack.extend(reversed(subdirs))


def content_hash(path: str) -> tuple[str, bytes]:
    """(blake2b-128 hex digest of the content, the first bytes for sniffing)."""
    digest = hashlib.blake2b(digest_size=16)
    head = b""
    with open(path, "rb") as handle:
        first = True
        while chunk := handle.read(HASH_CHUNK):
            if first:
                head = chunk[:8192]
                first = False
            digest.update(chunk)
    return digest.hexdigest(), head


def under_any(path: str, roots: Sequence[str]) -> bool:
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def has_media_extension(path: str) -> bool:
    return Path(path).suffix.lower() in MEDIA_EXTENSIONS
