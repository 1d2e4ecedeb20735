"""Subtitle files beside a video belong to the video: their text is indexed with its
segments, not as a text file of its own, and editing them re-indexes the video.

A video's fingerprint (size, mtime) and content hash therefore fold in its sidecars': a
re-run notices a changed ``clip.srt`` without reading ``clip.mp4`` again for the check,
and the segments' ids change with their text, so stale subtitles never linger.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

from polylens.ingest.sources import VIDEO_EXTENSIONS, FoundFile, content_hash
from polylens.ingest.subtitles import sidecar_paths, sidecar_stems


def is_video_name(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def video_of_sidecar(path: str) -> str | None:
    """The video a subtitle file belongs to (same folder and stem), or None."""
    stems = sidecar_stems(path)
    if not stems:
        return None
    folder = os.path.dirname(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    videos = {os.path.splitext(n)[0]: n for n in names if is_video_name(n)}
    for stem in stems:  # longest first: clip.en.srt is clip.en.mp4's before clip.mp4's
        if stem in videos:
            return os.path.join(folder, videos[stem])
    return None


def with_sidecars(entry: FoundFile) -> tuple[FoundFile, list[str]]:
    """The video's fingerprint with its sidecars' folded in, and the sidecars."""
    if not is_video_name(entry.path):
        return entry, []
    sidecars = sidecar_paths(entry.path)
    size, mtime = entry.size, entry.mtime_ns
    for path in sidecars:
        try:
            st = os.stat(path)
        except OSError:
            continue
        size += st.st_size
        mtime = max(mtime, st.st_mtime_ns)
    return replace(entry, size=size, mtime_ns=mtime), sidecars


def combined_hash(digest: str, sidecars: list[str]) -> str:
    """The video's content hash with its sidecars' contents (unchanged without any)."""
    if not sidecars:
        return digest
    combined = hashlib.blake2b(digest.encode(), digest_size=16)
    for path in sidecars:
        try:
            combined.update(content_hash(path)[0].encode())
        except OSError:
            continue
    return combined.hexdigest()
