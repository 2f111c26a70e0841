"""Every kind of file the knowledge bases read, through the real parser libraries, on small
fixtures; and the reasons a file fails: encrypted PDF, unsupported type, no text."""

from __future__ import annotations

import json

import pytest

from assistd.retrieval.parsers import ParseFailed, parse
from tests.retrieval import fixtures


def text_of(filename: str, content: bytes) -> str:
    return "\n".join(page.text for page in parse(filename, content))


def test_pdf_pages_keep_their_numbers() -> None:
    pages = parse("report.pdf", fixtures.pdf(["Quarterly revenue grew.", "Costs fell sharply."]))
    assert [(p.number, p.text.strip()) for p in pages] == [
        (1, "Quarterly revenue grew."),
        (2, "Costs fell sharply."),
    ]


def test_encrypted_pdf_fails_naming_the_encryption() -> None:
    with pytest.raises(ParseFailed) as failed:
        parse("locked.pdf", fixtures.encrypted_pdf("Top secret plans."))
    assert failed.value.code == "encrypted_pdf"
    assert "encrypted" in str(failed.value)


def test_damaged_pdf_fails_alone_with_a_reason() -> None:
    with pytest.raises(ParseFailed) as failed:
        parse("broken.pdf", b"%PDF-1.4\nthis is not really a pdf")
    assert failed.value.code in ("invalid_file", "empty_file")


def test_docx_paragraphs_and_tables() -> None:
    content = fixtures.docx(["The warranty lasts two years.", "Returns within 30 days."],
                            [["Model", "Price"], ["X100", "250"]])  # fmt: skip
    text = text_of("policy.docx", content)
    assert "The warranty lasts two years." in text
    assert "Returns within 30 days." in text
    assert "X100 | 250" in text


def test_pptx_slides_are_pages() -> None:
    pages = parse("deck.pptx", fixtures.pptx(["Roadmap for 2027", "Hiring plan"]))
    assert [(p.number, p.text) for p in pages] == [(1, "Roadmap for 2027"), (2, "Hiring plan")]


def test_xlsx_sheets_are_pages_with_their_rows() -> None:
    content = fixtures.xlsx({"Prices": [["item", "price"], ["apple", 3], ["pear", None]]})
    (page,) = parse("prices.xlsx", content)
    assert page.number == 1
    assert "Prices" in page.text and "apple\t3" in page.text and "pear\t" in page.text


def test_html_keeps_text_and_drops_scripts_and_styles() -> None:
    html = (b"<html><head><title>t</title><style>p{color:red}</style></head><body>"
            b"<h1>Install</h1><p>Run the installer &amp; reboot.</p><script>alert(1)</script>"
            b"</body></html>")  # fmt: skip
    text = text_of("guide.html", html)
    assert "Install" in text and "Run the installer & reboot." in text
    assert "alert" not in text and "color" not in text


def test_markdown_and_source_code_are_read_as_text() -> None:
    assert "# Title" in text_of("README.md", b"# Title\n\nSome prose.")
    assert "def area(r):" in text_of("geometry.py", b"def area(r):\n    return 3.14 * r * r\n")


def test_plain_text_in_a_legacy_encoding_is_detected() -> None:
    russian = "Привет, мир. Это проверка кодировки текста на русском языке."
    assert text_of("notes.txt", russian.encode("cp1251")) == russian
    chinese = "向量数据库让文件可以被检索。这是一段中文文本\uff0c用来测试编码检测。"
    assert text_of("notes.txt", chinese.encode("gb18030")) == chinese
    assert text_of("bom.txt", "\ufeffhello".encode("utf-8")) == "hello"


def test_csv_rows_carry_their_column_names() -> None:
    text = text_of("people.csv", b"name,city\nAda,London\nGrace,New York\n")
    assert "name: Ada, city: London" in text and "name: Grace, city: New York" in text


def test_json_is_pretty_printed_text() -> None:
    text = text_of("data.json", json.dumps({"product": "kettle", "watts": 2200}).encode())
    assert '"product": "kettle"' in text


def test_unknown_binary_type_is_unsupported() -> None:
    with pytest.raises(ParseFailed) as failed:
        parse("photo.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert failed.value.code == "unsupported_file"


def test_file_without_text_is_empty() -> None:
    with pytest.raises(ParseFailed) as failed:
        parse("blank.txt", b"   \n\n  ")
    assert failed.value.code == "empty_file"
    with pytest.raises(ParseFailed) as failed:
        parse("blank.pdf", fixtures.pdf([""]))
    assert failed.value.code == "empty_file"


def test_kind_is_sniffed_when_the_name_says_nothing() -> None:
    assert "Costs" in text_of("upload", fixtures.pdf(["Costs"]))
    assert "Hello" in text_of("upload", fixtures.docx(["Hello"]))
