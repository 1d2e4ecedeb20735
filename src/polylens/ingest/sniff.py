"""Decide a file's type from its first bytes, never from its extension.

A photo renamed to ``.txt`` is still indexed as a photo, and a text file named
``.jpg`` is reported rather than fed to an image decoder.
"""

from __future__ import annotations

from polylens.types import FileKind

HEAD_BYTES = 8192

_IMAGE_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"BM"),
    (0, b"II*\x00"),  # TIFF little-endian
    (0, b"MM\x00*"),  # TIFF big-endian
)


def is_image(head: bytes) -> bool:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return any(head[offset : offset + len(sig)] == sig for offset, sig in _IMAGE_SIGNATURES)


def is_pdf(head: bytes) -> bool:
    # The PDF spec allows junk before the header; readers accept it within 1 KiB.
    return b"%PDF-" in head[:1024]


def is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return head.startswith((b"\xff\xfe", b"\xfe\xff")) and len(head) > 2
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is still UTF-8.
        if exc.start >= len(head) - 3:
            return True
    printable = sum(1 for b in head if b >= 32 or b in (9, 10, 13))
    return printable / len(head) > 0.97


def sniff(head: bytes) -> FileKind | None:
    """The kind of content, or None when polylens does not index it."""
    if is_pdf(head):
        return "pdf"
    if is_image(head):
        return "image"
    if is_text(head):
        return "text"
    return None
