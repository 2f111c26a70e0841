"""`generate_qrcode`: text in, a QR code PNG out, shown in the reply as an image.

The PNG is drawn in the tool registry's compute pool, off the event loop.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, ClassVar

import segno

from assistd.tools.base import JsonDict, ToolContext, ToolResult

if TYPE_CHECKING:  # not imported at run time: the compute workers import this module
    from assistd.settings import Settings

MAX_TEXT = 2000  # a QR code holds at most about 2,900 bytes at the lowest error correction


class QrCode:
    name = "generate_qrcode"
    description = "Makes a QR code image that encodes a text or URL."
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "What the code encodes."}},
        "required": ["text"],
    }

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        text = str(args.get("text", ""))
        if not text:
            return ToolResult(output="Error: 'text' is empty; nothing to encode.")
        if len(text.encode()) > MAX_TEXT:
            return ToolResult(
                output=f"Error: the text is longer than {MAX_TEXT} bytes; a QR code cannot hold it."
            )
        if context.files is None:
            return ToolResult(output="Error: this server cannot store files for this run.")
        png = await context.require_compute().call(render_png, text)
        file_id = await context.files.save("qrcode.png", png)
        return ToolResult(
            output=f"A QR code for the text was made ({file_id}) and is shown to the user.",
            image_file_ids=(file_id,),
        )

    async def close(self) -> None:
        return None


def render_png(text: str) -> bytes:
    """The QR code of `text` as a PNG: what a compute worker runs."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


def factory(settings: Settings) -> QrCode:
    return QrCode()
