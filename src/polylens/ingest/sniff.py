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


# ISO base media (MP4, MOV, 3GP): an 'ftyp' box first, whose brand tells stills and
# audio from video; QuickTime files may start with other top-level boxes instead.
_STILL_OR_AUDIO_BRANDS = frozenset(
    [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"]
    + [b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "]
)
_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def is_video(head: bytes) -> bool:
    """MP4/MOV/3GP, Matroska/WebM, AVI, MPEG-TS/PS: containers FFmpeg opens; whether a
    video stream in them decodes is for the decoder to say (audio-only files fail then)."""
    box = head[4:8]
    # a box's 32-bit size comes first; real first boxes are small (text is never 0 there)
    if head[:2] == b"\x00\x00" and box == b"ftyp":
        return head[8:12] not in _STILL_OR_AUDIO_BRANDS
    if head[:1] == b"\x00" and box in _QUICKTIME_BOXES:
        return True
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, WebM
        return b"matroska" in head[:64] or b"webm" in head[:64]
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:4] == b"\x00\x00\x01\xba":  # MPEG program stream
        return True
    # MPEG transport stream: a sync byte every 188 bytes
    return len(head) >= 188 * 4 and all(head[i * 188] == 0x47 for i in range(4))


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
    if is_video(head):
        return "video"
    if is_text(head):
        return "text"
    return None
