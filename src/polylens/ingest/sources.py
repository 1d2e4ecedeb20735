"""Walk the user's paths and fingerprint files: what is there, and has it changed?

A file's identity is the hash of its content; (size, mtime) only lets a re-run skip
re-hashing a file that is evidently untouched, as git does.

A ``.polylensignore`` file (gitignore syntax) in any walked folder leaves matching files
and folders out of the walk, for that folder and below.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from polylens.errors import InputError

HASH_CHUNK = 1 << 20

IGNORE_FILE = ".polylensignore"

# Extensions that promise a supported type: a file with one of these whose content is
# not that type is reported as failed, not silently skipped.
VIDEO_EXTENSIONS = frozenset(".mp4 .m4v .mkv .webm .mov .avi .mpg .mpeg .ts".split())
MEDIA_EXTENSIONS = (
    frozenset(
        ".jpg .jpeg .jpe .png .gif .bmp .tif .tiff .webp .pdf .txt .md .markdown .text".split()
    )
    | VIDEO_EXTENSIONS
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
    into directories, so symlink loops cannot trap the walk).

    Ignore files: a ``.polylensignore`` in any folder the walk enters (a root folder
    included) holds gitignore patterns, relative to that folder, for what lies in it and
    below: ``#`` comments, ``!`` negation, ``dir/`` for folders only (an ignored folder is
    not entered, so nothing under it can be re-included); a deeper file adds to the ones
    above and wins where both match, as nested ``.gitignore`` files do. Only files found
    *below* a root are subject to them: the roots themselves are always walked, a file
    given as a root is always yielded, and ignore files above a root (in its parent
    folders) are not read. An ignore file that cannot be read or decoded is reported as a
    ``WalkProblem`` and the walk goes on without its patterns; invalid lines are reported
    likewise and only they are dropped.
    """
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


# The ignore files in force in a directory, outermost first: (the folder holding the
# file, with a trailing separator; its patterns). A tuple shared by all the entries of
# that directory and its subdirectories; extended only where another file is found.
_Rules = tuple[tuple[str, pathspec.GitIgnoreSpec], ...]


def _walk_dir(root: str, excluded: set[str], seen: set[str]) -> Iterator[FoundFile | WalkProblem]:
    stack: list[tuple[str, _Rules]] = [(root, ())]
    while stack:
        directory, rules = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield WalkProblem(directory, f"cannot list directory: {exc.strerror or exc}")
            continue
        ignore_entry = next((e for e in entries if e.name == IGNORE_FILE), None)
        if ignore_entry is not None:
            spec, problem = _read_ignore_file(ignore_entry.path)
            if problem is not None:
                yield problem
            if spec is not None:
                base = directory if directory.endswith(os.sep) else directory + os.sep
                rules = (*rules, (base, spec))
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = entry.path
            if path in excluded:
                continue
            utf8 = _utf8(path)
            if rules:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError as exc:
                    yield WalkProblem(_shown(path), f"cannot stat: {exc.strerror or exc}")
                    continue
                if _ignored(path if utf8 else _shown(path), is_dir, rules):
                    continue
            if not utf8:
                # The store keeps names as UTF-8 text; such a name would fail the whole run.
                yield WalkProblem(
                    _shown(path), "file name is not valid UTF-8; rename it to index it"
                )
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append((path, rules))
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


def _ignored(path: str, is_dir: bool, rules: _Rules) -> bool:
    """Whether the deepest ignore file with a matching pattern excludes ``path`` (the
    last matching pattern of a file decides, so ``!pattern`` can re-include)."""
    for base, spec in reversed(rules):
        relative = path[len(base) :]
        if os.sep != "/":
            relative = relative.replace(os.sep, "/")
        if is_dir:
            relative += "/"  # so that ``name/`` patterns match folders only
        include = spec.check_file(relative).include
        if include is not None:
            return include
    return False


def _read_ignore_file(path: str) -> tuple[pathspec.GitIgnoreSpec | None, WalkProblem | None]:
    """The patterns of one ignore file, read once; a problem instead of an exception."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return None, WalkProblem(
            path, f"cannot read ignore file: {exc.strerror or exc}; its patterns are not applied"
        )
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        return None, WalkProblem(
            path,
            f"ignore file is not valid UTF-8 (byte {exc.start}); its patterns are not applied",
        )
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines), None
    except ValueError:
        pass
    # Some line is not a valid pattern: keep the others (re-parsed one by one only here).
    good, bad = [], []
    for number, line in enumerate(lines, 1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except ValueError:
            bad.append(f"{number} ({line.strip()!r})")
        else:
            good.append(line)
    problem = WalkProblem(
        path, f"ignore file has invalid patterns on line {', '.join(bad)}; those lines are skipped"
    )
    return pathspec.GitIgnoreSpec.from_lines(good), problem


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
