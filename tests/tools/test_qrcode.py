"""`generate_qrcode`: text in, a PNG File out, shown in the reply as an image, and the PNG
decodes back to the text."""

from __future__ import annotations

import io

import zxingcpp
from dashscope import Messages
from PIL import Image

from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer
from tests.tools.helpers import assert_links_to, converse, image_link, ok

QR = [{"type": "generate_qrcode"}]
TEXT = "https://example.org/assistd?q=二维码&n=42"


def test_qr_code_png_decodes_back_to_the_text(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation, run_id = converse(
        server,
        fake_model,
        ToolCalls([("generate_qrcode", {"text": TEXT})]),
        Reply("Here is your QR code."),
        tools=QR,
        question=f"Make a QR code of {TEXT}",
    )
    [output] = conversation.outputs(run_id)
    reply = conversation.reply(run_id)
    assert [p["type"] for p in reply["content"]] == ["image_file", "text"], reply
    file_id = reply["content"][0]["image_file"]["file_id"]
    assert file_id in output, output
    text = reply["content"][1]["text"]["value"]
    assert text == f"Here is your QR code.\n\n![image]({image_link(text)})"
    assert_links_to(image_link(text), server, file_id)

    png = conversation.download(file_id)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    decoded = zxingcpp.read_barcodes(image.convert("L"))
    assert [(d.format, d.text) for d in decoded] == [(zxingcpp.BarcodeFormat.QRCode, TEXT)]

    # The SDK parses the message (it drops the image's file id, spec 13.5).
    answer = ok(Messages.list(conversation.thread_id)).data[0]
    assert [part.type for part in answer.content] == ["image_file", "text"]


def test_qr_code_refusals_are_outputs(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation, run_id = converse(
        server,
        fake_model,
        ToolCalls([("generate_qrcode", {"text": ""}), ("generate_qrcode", {"text": "x" * 5000})]),
        Reply("Those cannot be encoded."),
        tools=QR,
    )
    empty, too_long = conversation.outputs(run_id)
    assert "empty" in empty
    assert "longer than" in too_long
    reply = conversation.reply(run_id)
    assert [p["type"] for p in reply["content"]] == ["text"], reply
