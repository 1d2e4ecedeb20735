"""PDF pages through pypdfium2: the text layer, and a rendering for the image model/OCR.

PDFium is not thread-safe, so every call into it holds one process-wide lock; rendering
still overlaps with model inference, which is where the time goes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from polylens._lazy import import_or_raise
from polylens.errors import CorruptFileError, InputError

_PDFIUM_LOCK = threading.Lock()  # PDFium is process-global state; one lock guards it

# A page whose text layer has fewer visible characters than this is treated as a scan.
MIN_TEXT_LAYER_CHARS = 16


class PdfFile:
    """An open PDF; use as a context manager. Page numbers here are 0-based."""

    def __init__(self, path: str | Path, *, max_pages: int) -> None:
        self._pdfium = import_or_raise("pypdfium2")
        self.path = str(path)
        with _PDFIUM_LOCK:
            _reset_last_error(self._pdfium)
            try:
                self._doc = self._pdfium.PdfDocument(self.path)
            except FileNotFoundError as exc:  # pypdfium2 checks the path itself
                raise InputError("cannot read: No such file or directory") from exc
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror or exc}") from exc
            except self._pdfium.PdfiumError as exc:
                message = str(exc)
                if "password" in message.lower():
                    raise CorruptFileError("PDF is encrypted and needs a password") from exc
                raise CorruptFileError(f"cannot open PDF: {message}") from exc
            self.page_count = len(self._doc)
        if self.page_count == 0:
            self.close()
            raise CorruptFileError("PDF has no pages")
        if self.page_count > max_pages:
            self.close()
            raise CorruptFileError(
                f"PDF has {self.page_count} pages, over the limit of {max_pages} (max_pdf_pages)"
            )

    def page_text(self, index: int) -> str:
        with _PDFIUM_LOCK:
            try:
                page = self._doc[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        text = textpage.get_text_bounded()
                    finally:
                        textpage.close()
                finally:
                    page.close()
            except self._pdfium.PdfiumError as exc:
                raise CorruptFileError(f"page {index + 1}: cannot read text: {exc}") from exc
        return _clean(text)

    def render(self, index: int, *, dpi: float, max_side: int) -> Any:
        """The page as an RGB PIL image at ``dpi``, its longest side capped at ``max_side``."""
        with _PDFIUM_LOCK:
            try:
                page = self._doc[index]
                try:
                    width, height = page.get_size()
                    scale = dpi / 72.0
                    longest = max(width, height) * scale
                    if longest > max_side:
                        scale *= max_side / longest
                    bitmap = page.render(scale=max(scale, 0.05))
                    image = bitmap.to_pil().convert("RGB")
                    bitmap.close()
                finally:
                    page.close()
            except self._pdfium.PdfiumError as exc:
                raise CorruptFileError(f"page {index + 1}: cannot render: {exc}") from exc
        return image

    def close(self) -> None:
        doc = getattr(self, "_doc", None)
        if doc is not None:
            with _PDFIUM_LOCK:
                doc.close()
            self._doc = None

    def __enter__(self) -> PdfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset_last_error(pdfium: Any) -> None:
    """Make PDFium's last-error code fresh before a load (call with the lock held).

    PDFium reports why a load failed through a process-wide last-error code that only some
    failures set; a PDF that fails without setting it would otherwise be reported with the
    previous failure's reason (a broken PDF read after an encrypted one was called
    "encrypted"). A load of zero bytes fails with a format error, which then stands as the
    reason for any failure PDFium does not explain.
    """
    raw = getattr(pdfium, "raw", None)
    if raw is not None:
        raw.FPDF_LoadMemDocument(b"", 0, None)


def has_text_layer(text: str) -> bool:
    return sum(1 for ch in text if not ch.isspace()) >= MIN_TEXT_LAYER_CHARS


def _clean(text: str) -> str:
    # PDFium marks soft hyphens and uses \r\n; normalise for BM25 and snippets.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufffe", "").replace("\x02", "")
    text = text.replace("-\n", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
