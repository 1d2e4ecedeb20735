"""Read text files and split them into passages that fit a text embedder.

Passages follow the document's own structure: Markdown headings start a new passage,
paragraphs are kept whole where they fit, and only an over-long paragraph is cut, at
sentence ends.
"""

from __future__ import annotations

import re

from polylens.errors import CorruptFileError

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def decode_text(data: bytes) -> str:
    """The text of a file: UTF-16 with a BOM, UTF-8 (BOM or not), else Windows-1252.

    NUL characters (a binary tail after a text head, padding) are dropped: they carry no
    meaning for search and break C-string consumers downstream."""
    return _decode(data).replace("\x00", "")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"invalid UTF-16 text: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def split_passages(text: str, target_chars: int) -> list[str]:
    """Passages of at most about ``target_chars`` characters, none empty."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = _blocks(text)
    passages: list[str] = []
    current: list[str] = []
    size = 0
    for block in blocks:
        starts_section = bool(_HEADING.match(block))
        if current and (size + len(block) > target_chars or starts_section):
            passages.append("\n\n".join(current))
            current, size = [], 0
        if len(block) > target_chars:
            pieces = _split_long(block, target_chars)
            passages.extend(pieces[:-1])
            block = pieces[-1]
        current.append(block)
        size += len(block) + 2
    if current:
        passages.append("\n\n".join(current))
    return [p.strip() for p in passages if p.strip()]


def _blocks(text: str) -> list[str]:
    blocks: list[str] = []
    for raw in re.split(r"\n\s*\n", text):
        lines = raw.strip("\n").split("\n")
        # A heading line glued to its paragraph still starts a section.
        part: list[str] = []
        for line in lines:
            if _HEADING.match(line) and part:
                blocks.append("\n".join(part).strip())
                part = []
            part.append(line)
        if part and "\n".join(part).strip():
            blocks.append("\n".join(part).strip())
    return blocks


def _split_long(block: str, target_chars: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(block):
        while len(sentence) > target_chars:  # no sentence ends in reach: cut at a space
            cut = sentence.rfind(" ", 0, target_chars)
            cut = cut if cut > target_chars // 2 else target_chars
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + len(sentence) + 1 > target_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces or [block]
