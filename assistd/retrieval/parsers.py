"""Files to text: one parser per kind, each returning pages of text.

A file that cannot be read fails with ParseFailed, whose message is the `last_error` a
client sees: an encrypted PDF, an unsupported type, a file without text.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

from charset_normalizer import from_bytes


class ParseFailed(Exception):
    """The file could not become text; `code` is stable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[ParseFailed], tuple[str, str]]:
        # Raised in a worker process, it crosses back pickled: keep both arguments.
        return (type(self), (self.code, str(self)))


@dataclass(frozen=True, slots=True)
class Page:
    number: int | None  # 1-based page (PDF) or slide (PPTX) or sheet (XLSX); None elsewhere
    text: str


SOURCE_SUFFIXES = frozenset(
    [
        ".py",
        ".js",
        ".mjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".scala",
        ".sh",
        ".bash",
        ".sql",
        ".r",
        ".lua",
        ".pl",
        ".css",
        ".scss",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".tex",
        ".xml",
        ".vue",
    ]
)
TEXT_SUFFIXES = frozenset({".txt", ".text", ".log", ".rst", ".md", ".markdown"})


def decode_text(content: bytes) -> str:
    """Bytes of unknown encoding as text (UTF-8 and its BOMs first, then detection)."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if content.startswith(bom):
            return content.decode(codec)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(content).best()
    if best is None:
        raise ParseFailed(
            "unsupported_file", "the file is not text in any encoding it could detect"
        )
    return str(best)


def _plain(content: bytes) -> list[Page]:
    return [Page(None, decode_text(content))]


def _pdf(content: bytes) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise ParseFailed("encrypted_pdf", "the PDF is encrypted; upload it without a password")
        return [Page(n, page.extract_text() or "") for n, page in enumerate(reader.pages, 1)]
    except FileNotDecryptedError as exc:
        raise ParseFailed(
            "encrypted_pdf", "the PDF is encrypted; upload it without a password"
        ) from exc
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ParseFailed("invalid_file", f"the PDF could not be read: {exc}") from exc


def _opens_without_password(reader: object) -> bool:
    # Some PDFs are "encrypted" with an empty user password: those open as they are.
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:
        return False


def _docx(content: bytes) -> list[Page]:
    import docx

    document = docx.Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
    return [Page(None, "\n\n".join(parts))]


def _pptx(content: bytes) -> list[Page]:
    from pptx import Presentation

    pages = []
    for number, slide in enumerate(Presentation(io.BytesIO(content)).slides, 1):
        texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame]
        pages.append(Page(number, "\n\n".join(texts)))
    return pages


def _xlsx(content: bytes) -> list[Page]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    pages = []
    for number, sheet in enumerate(book.worksheets, 1):
        lines = [
            "\t".join("" if v is None else str(v) for v in row)
            for row in sheet.iter_rows(values_only=True)
            if any(v is not None for v in row)
        ]
        pages.append(Page(number, f"# {sheet.title}\n" + "\n".join(lines)))
    book.close()
    return pages


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    _BLOCK = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "tr",
            "table",
            "section",
            "article",
            "pre",
            "blockquote",
            "title",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(content: bytes) -> list[Page]:
    parser = _HtmlText()
    parser.feed(decode_text(content))
    parser.close()
    return [Page(None, "".join(parser.parts))]


def _csv(content: bytes) -> list[Page]:
    text = decode_text(content)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096])
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return [Page(None, "")]
    header, body = rows[0], rows[1:]
    # Each row carries its column names, so a chunk of rows reads on its own.
    lines = [", ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False)) for row in body]
    return [Page(None, "\n".join(lines) if lines else ", ".join(header))]


def _json(content: bytes) -> list[Page]:
    text = decode_text(content)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ParseFailed("invalid_file", f"the JSON file is not valid JSON: {exc}") from exc
    return [Page(None, json.dumps(value, ensure_ascii=False, indent=2))]


_BY_SUFFIX: dict[str, Callable[[bytes], list[Page]]] = {
    ".pdf": _pdf, ".docx": _docx, ".pptx": _pptx, ".xlsx": _xlsx, ".xlsm": _xlsx,
    ".html": _html, ".htm": _html, ".csv": _csv, ".tsv": _csv, ".json": _json,
    **dict.fromkeys(TEXT_SUFFIXES | SOURCE_SUFFIXES, _plain),
}  # fmt: skip


def _sniff(content: bytes) -> Callable[[bytes], list[Page]] | None:
    """A parser from the content itself, for names without a known suffix."""
    if content.startswith(b"%PDF-"):
        return _pdf
    if content.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(content)).namelist())
        except zipfile.BadZipFile:
            return None
        for marker, parser in (("word/document.xml", _docx), ("ppt/presentation.xml", _pptx),
                               ("xl/workbook.xml", _xlsx)):  # fmt: skip
            if marker in names:
                return parser
        return None
    head = content[:1024].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return _html
    return None if b"\x00" in content[:8192] else _plain


def parse(filename: str, content: bytes) -> list[Page]:
    """The file's pages of text. Raises ParseFailed naming why there is none."""
    suffix = PurePosixPath(filename.lower()).suffix
    parser = _BY_SUFFIX.get(suffix) or _sniff(content)
    if parser is None:
        raise ParseFailed(
            "unsupported_file", f"files of type '{suffix or 'unknown'}' cannot be searched"
        )
    try:
        pages = parser(content)
    except ParseFailed:
        raise
    except Exception as exc:  # a damaged file of a known kind: that file fails, nothing else
        raise ParseFailed(
            "invalid_file", f"the file could not be read as {suffix or 'text'}: {exc}"
        ) from exc
    if not any(page.text.strip() for page in pages):
        raise ParseFailed("empty_file", "the file has no text to search")
    return pages


def supported(filename: str, content: bytes) -> bool:
    """Whether `parse` knows how to read the file (by its suffix, else its content); the
    CLI refuses others before uploading anything."""
    suffix = PurePosixPath(filename.lower()).suffix
    return suffix in _BY_SUFFIX or _sniff(content) is not None
