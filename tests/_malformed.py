"""A deterministic corpus of malformed, hostile and unusual files for the ingest tests.

Every file is built byte by byte or from fixed pixel data (no randomness, no network),
so a failure reproduces exactly. :func:`build_corpus` writes the whole corpus and says,
for each path, what the indexer must do with it.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _files import png_header_only
from PIL import Image

# -- PDF -------------------------------------------------------------------------------

_PAD = bytes.fromhex(
    "28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a"
)  # the standard security handler's padding string (PDF 1.7, 7.6.3.3)


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _page_content(text: str) -> bytes:
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"BT /F1 6 Tf 4 30 Td ({safe}) Tj ET".encode("latin-1")


def pdf_document(
    texts: list[str],
    *,
    size: tuple[int, int] = (144, 72),
    broken_pages: frozenset[int] = frozenset(),
    user_password: str | None = None,
) -> bytes:
    """A PDF with one page per text (Helvetica, a text layer pdfium reads back).

    ``broken_pages`` (0-based) get a page object that is not a dictionary, so opening
    that page fails while the others are fine. ``user_password`` encrypts the file
    (RC4 40-bit, standard handler revision 2): it cannot be opened without the password.
    """
    objects: dict[int, bytes] = {}
    n = len(texts)
    page_ids = [4 + 2 * i for i in range(n)]
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    kids = b" ".join(b"%d 0 R" % p for p in page_ids)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    streams: dict[int, bytes] = {}
    for i, (pid, text) in enumerate(zip(page_ids, texts, strict=True)):
        if i in broken_pages:
            objects[pid] = b"(this page object is a string, not a page dictionary)"
        else:
            objects[pid] = (
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
                b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
                % (size[0], size[1], pid + 1)
            )
        streams[pid + 1] = _page_content(text)
    file_id = hashlib.md5(repr((texts, size, sorted(broken_pages))).encode()).digest()
    trailer_extra = b""
    if user_password is not None:
        owner_key = hashlib.md5((b"owner-secret" + _PAD)[:32]).digest()[:5]
        user_padded = (user_password.encode("latin-1") + _PAD)[:32]
        o_entry = _rc4(owner_key, user_padded)
        permissions = -4
        key = hashlib.md5(
            user_padded + o_entry + struct.pack("<i", permissions) + file_id
        ).digest()[:5]
        u_entry = _rc4(key, _PAD)
        for num in streams:
            object_key = hashlib.md5(key + struct.pack("<I", num)[:3] + b"\x00\x00").digest()
            streams[num] = _rc4(object_key[:10], streams[num])
        enc_num = 4 + 2 * n
        objects[enc_num] = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
            o_entry.hex().encode(),
            u_entry.hex().encode(),
            permissions,
        )
        trailer_extra = b" /Encrypt %d 0 R" % enc_num
    for num, data in streams.items():
        objects[num] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    size_entry = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size_entry
    for num in range(1, size_entry):
        out += b"%010d 00000 n \n" % offsets[num] if num in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R /ID [<%s> <%s>]%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size_entry,
        file_id.hex().encode(),
        file_id.hex().encode(),
        trailer_extra,
        xref,
    )
    return bytes(out)


# -- images ------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_streamed(
    width: int,
    height: int,
    *,
    bit_depth: int = 8,
    colour_type: int = 0,
    channels: int = 1,
    palette: bytes = b"",
    transparency: bytes = b"",
) -> bytes:
    """A real, fully decodable PNG of any size, compressed row by row (never allocated)."""
    row_bytes = (width * channels * bit_depth + 7) // 8
    pattern = bytes(range(256))
    row = b"\x00" + (pattern * (row_bytes // 256 + 1))[:row_bytes]
    comp = zlib.compressobj(6)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    extra = (_chunk(b"PLTE", palette) if palette else b"") + (
        _chunk(b"tRNS", transparency) if transparency else b""
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _pattern(mode: str, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A deterministic picture with detail (so JPEG scans are long enough to cut)."""
    width, height = size
    data = bytes((x * 7 + y * 13 + (x * y) % 31) % 256 for y in range(height) for x in range(width))
    gray = Image.frombytes("L", size, data)
    if mode == "L":
        return gray
    rgb = Image.merge(
        "RGB", (gray, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gray.rotate(180))
    )
    return rgb.convert(mode)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()


def animated_gif(frames: int, side: int = 48) -> bytes:
    """A GIF with ``frames`` frames: first frame red, later ones alternate blue and green.

    Two distinct frames are encoded once by Pillow and the frame blocks repeated, so even
    tens of thousands of frames cost milliseconds to build."""
    palette = [255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (768 - 9)
    images = []
    for colour in (0, 1, 2):
        frame = Image.new("P", (side, side), colour)
        frame.putpalette(palette)
        images.append(frame)
    data = encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)
    first = data.index(b"\x21\xf9\x04")  # first graphic control extension
    second = data.index(b"\x21\xf9\x04", first + 1)
    third = data.index(b"\x21\xf9\x04", second + 1)
    head, frame0, pair = data[:first], data[first:second], data[second:-1]
    assert data[-1:] == b";" and third > second
    return head + frame0 + pair * ((frames - 1) // 2) + b";"


def gif_header_only(width: int, height: int) -> bytes:
    """A GIF whose logical screen is ``width`` x ``height`` with one 1x1 frame."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def exif_rotated_jpeg() -> bytes:
    """40x20 pixels stored, orientation 6: displayed (and indexed) as 20x40."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(_pattern("RGB", (40, 20)), "JPEG", exif=exif.tobytes())


def multipage_tiff() -> bytes:
    pages = [Image.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


# -- the corpus --------------------------------------------------------------------------

BIG_LEGAL_SIDE = 10_000  # 100 Mpx: over Pillow's own warning limit, under max_image_pixels
BIG_16BIT_SIDE = 9_000  # 81 Mpx at 16 bits per pixel
GIF_FRAMES = 5_001
PDF_PAGES = 3_000
HUGE_LINE_BYTES = 4_000_000


@dataclass(frozen=True)
class Case:
    """What the indexer must do with one path of the corpus.

    ``outcome``: ``indexed`` (a file row with ``items`` items of ``kind``), ``failed`` or
    ``skipped`` (reported, with a reason matching ``reason``), or ``ignored`` (never
    reported: hidden files, directory symlinks, FIFOs, devices).
    """

    name: str
    outcome: str
    reason: str = ""
    kind: str | None = None
    items: int | None = None
    note: str = ""


def _text_pdf(pages: int, word: str) -> bytes:
    return pdf_document([f"{word} page {i + 1} of the manual" for i in range(pages)])


def build_corpus(root: Path, outside: Path, *, dry_run: bool = False) -> list[Case]:
    """Write the corpus under ``root`` (and a few link targets under ``outside``).

    ``dry_run`` only lists the cases (for test collection): nothing is written and the
    expensive files are never generated."""
    cases: list[Case] = []

    def add(name: str, data: bytes | Callable[[], bytes], **expect: object) -> None:
        if not dry_run:
            (root / name).write_bytes(data() if callable(data) else data)
        cases.append(Case(name, **expect))  # type: ignore[arg-type]

    def link(name: str, target: Path | str, expect: Case, directory: bool = False) -> None:
        if not dry_run:
            (root / name).symlink_to(target, target_is_directory=directory)
        cases.append(expect)

    if not dry_run:
        root.mkdir(parents=True, exist_ok=True)
        (outside / "dir").mkdir(parents=True, exist_ok=True)
        (outside / "outside.txt").write_text("a file outside the indexed root\n")
        (outside / "dir" / "inner.txt").write_text("inside a linked directory\n")

    jpeg = encode(_pattern("RGB"), "JPEG", quality=90)
    png = encode(_pattern("RGB"), "PNG")
    text = "Gliders ride thermals over the ridge.\n\nA second paragraph about kites.\n"

    # images: broken, hostile, big, unusual modes
    add("truncated.jpg", jpeg[: len(jpeg) * 2 // 3], outcome="failed", reason="cannot decode")
    add("truncated.png", png[: len(png) // 2], outcome="failed", reason="cannot decode")
    add("soi-only.jpg", b"\xff\xd8\xff", outcome="failed", reason="cannot decode|not a recog")
    add("bomb.png", png_header_only(50_000, 50_000), outcome="failed", reason="bomb")
    add("bomb.gif", gif_header_only(60_000, 60_000), outcome="failed", reason="bomb")
    add(
        "big-legal.png",
        lambda: png_streamed(BIG_LEGAL_SIDE, BIG_LEGAL_SIDE),
        outcome="indexed",
        kind="image",
        items=1,
        note="100 Mpx grayscale: downscaled to max_image_side, not refused",
    )
    add(
        "big-16bit.png",
        lambda: png_streamed(BIG_16BIT_SIDE, BIG_16BIT_SIDE, bit_depth=16),
        outcome="indexed",
        kind="image",
        items=1,
        note="81 Mpx I;16: downscaled before conversion (memory bounded)",
    )
    add("animated.gif", animated_gif(GIF_FRAMES), outcome="indexed", kind="image", items=1)
    add("cmyk.jpg", encode(_pattern("CMYK"), "JPEG"), outcome="indexed", kind="image", items=1)
    gray16 = Image.frombytes("I;16", (64, 32), bytes((i * 37) % 256 for i in range(64 * 32 * 2)))
    add("gray16.png", encode(gray16, "PNG"), outcome="indexed", kind="image", items=1)
    palette = _pattern("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    add(
        "palette-transparent.png",
        encode(palette, "PNG", transparency=0),
        outcome="indexed",
        kind="image",
        items=1,
    )
    add("la.png", encode(_pattern("LA"), "PNG"), outcome="indexed", kind="image", items=1)
    add("rgba.png", encode(_pattern("RGBA"), "PNG"), outcome="indexed", kind="image", items=1)
    add("onebit.png", encode(_pattern("1"), "PNG"), outcome="indexed", kind="image", items=1)
    add("multipage.tif", multipage_tiff(), outcome="indexed", kind="image", items=1)
    add("photo.webp", encode(_pattern("RGB"), "WEBP"), outcome="indexed", kind="image", items=1)
    add("rotated.jpg", exif_rotated_jpeg(), outcome="indexed", kind="image", items=1)
    add("plain.bmp", encode(_pattern("RGB"), "BMP"), outcome="indexed", kind="image", items=1)

    # zero bytes and wrong extensions, both ways
    for name in ("empty.jpg", "empty.pdf", "empty.txt", "empty"):
        add(name, b"", outcome="skipped", reason="^empty file$")
    add("photo-named.txt", jpeg, outcome="indexed", kind="image", items=1)
    add("text-named.png", text.encode(), outcome="indexed", kind="text", items=1)
    add("pdf-named.jpg", _text_pdf(2, "misnamed"), outcome="indexed", kind="page", items=2)
    add("png-named.pdf", png, outcome="indexed", kind="image", items=1)
    add(
        "random.jpg",
        bytes((i * 151 + 7) % 256 for i in range(4096)),
        outcome="failed",
        reason="not a supported type \\(the extension suggests one\\)",
    )
    add("archive.bin", b"PK\x03\x04" + bytes(100), outcome="skipped", reason="not a supported")

    # PDFs
    add(
        "corrupt.pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF",
        outcome="failed",
        reason="PDF",
    )
    add(
        "truncated.pdf",
        _text_pdf(4, "cut")[:300],
        outcome="failed",
        reason="PDF",
    )
    add(
        "encrypted.pdf",
        pdf_document(["a secret page"], user_password="s3cret"),
        outcome="failed",
        reason="encrypted.*password",
    )
    add("no-pages.pdf", pdf_document([]), outcome="failed", reason="^cannot open PDF")
    add(
        "thousands.pdf",
        _text_pdf(PDF_PAGES, "tiny"),
        outcome="indexed",
        kind="page",
        items=PDF_PAGES,
    )
    add(
        "junk-before-header.pdf",
        b"garbage " * 40 + _text_pdf(1, "junky"),
        outcome="indexed",
        kind="page",
        items=1,
    )

    # text encodings and shapes
    add(
        "latin1.txt",
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade.\n".encode("latin-1"),
        outcome="indexed",
        kind="text",
        items=1,
    )
    add(
        "utf16-le.txt",
        "\ufeffUTF-16 text with a byte order mark: \u00fcber stra\u00dfe\n".encode("utf-16-le"),
        outcome="indexed",
        kind="text",
        items=1,
    )
    add(
        "utf16-be.txt",
        "\ufeffbig-endian \u65e5\u672c\u8a9e text\n".encode("utf-16-be"),
        outcome="indexed",
        kind="text",
        items=1,
    )
    add(
        "nul-bytes.txt",
        b"text with\x00NUL bytes\x00 in it\n" * 4,
        outcome="failed",
        reason="not a supported type \\(the extension suggests one\\)",
    )
    add(
        "late-nul.txt",
        b"plain words before a binary tail. " * 300 + b"\x00\x00 tail\n",
        outcome="indexed",
        kind="text",
        items=6,
        note="NUL after the sniffed head: indexed, NULs dropped",
    )
    add(
        "huge-line.txt",
        b"x" * HUGE_LINE_BYTES,
        outcome="indexed",
        kind="text",
        items=HUGE_LINE_BYTES // 2000,
    )

    # names
    for name in (
        "unicode \u00fcn\u00efc\u00f6d\u00e9 \u65e5\u672c\u8a9e.txt",
        "new\nline.txt",
        "  spaces  in name .txt",
        "-leading-dash.txt",
        "a" * 251 + ".txt",
    ):
        add(name, f"file called {name[:20]!r}\n".encode(), outcome="indexed", kind="text", items=1)
    add(".hidden.txt", b"hidden files are not indexed\n", outcome="ignored")

    # links, loops and special files
    link(
        "link-outside.txt",
        outside / "outside.txt",
        Case("link-outside.txt", "indexed", kind="text", items=1),
    )
    link("link-outside-dir", outside / "dir", Case("link-outside-dir", "ignored"), directory=True)
    link("loop", root, Case("loop", "ignored"), directory=True)
    link(
        "self-loop.txt",
        root / "self-loop.txt",
        Case("self-loop.txt", "failed", reason="cannot stat: Too many levels"),
    )
    link(
        "dangling.jpg",
        root / "does-not-exist.jpg",
        Case("dangling.jpg", "failed", reason="cannot stat: No such file"),
    )
    link("zero-device.txt", "/dev/zero", Case("zero-device.txt", "ignored"))
    if not dry_run:
        os.mkfifo(root / "fifo.txt")
    cases.append(Case("fifo.txt", "ignored"))
    return cases
