"""What an MCP tool's answer becomes: the text the model reads, and assistd Files.

Text parts are joined; images, audio and binary resources are saved as Files (images are
shown to the user in the reply) and named in the text as `[image file-…]`; a resource
link is a line (never fetched); structured content is given as JSON when there is no
text. An error is `{"error": {"code", "message"}}`, which the model can act on.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from assistd.tools.base import FileAccess, ToolResult

# Images the reply can show; any other image type is kept as a plain file.
SHOWN_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Types that the platform's table may lack.
_EXTENSIONS = {
    "audio/wav": ".wav", "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "image/webp": ".webp",
}  # fmt: skip


def error_output(code: str | int, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)


@dataclass
class _Answer:
    tool: str
    files: FileAccess | None
    lines: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    texts: int = 0  # text parts seen

    async def add(self, block: Any) -> None:
        if isinstance(block, TextContent):
            self.texts += 1
            self.lines.append(block.text)
        elif isinstance(block, ImageContent):
            await self._file("image", block.data, block.mime_type, None)
        elif isinstance(block, AudioContent):
            await self._file("audio", block.data, block.mime_type, None)
        elif isinstance(block, ResourceLink):
            title = block.title or block.name
            self.lines.append(f"[resource {title}: {block.uri}]")
        elif isinstance(block, EmbeddedResource):
            await self._resource(block.resource)

    async def _resource(self, resource: TextResourceContents | BlobResourceContents) -> None:
        if isinstance(resource, TextResourceContents):
            self.texts += 1
            self.lines.append(resource.text)
            return
        kind = "image" if (resource.mime_type or "") in SHOWN_IMAGES else "file"
        name = resource.uri.rstrip("/").rsplit("/", 1)[-1]
        await self._file(kind, resource.blob, resource.mime_type, name)

    async def _file(self, kind: str, data: str, mime: str | None, name: str | None) -> None:
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            self.lines.append(f"[{kind} not stored: its data is not valid base64]")
            return
        if self.files is None:
            self.lines.append(f"[{kind} not stored: no file storage for this call]")
            return
        file_id = await self.files.save(_filename(self.tool, kind, mime, name), content)
        shown = kind == "image" and (mime or "").lower() in SHOWN_IMAGES
        (self.images if shown else self.others).append(file_id)
        self.lines.append(f"[{kind} {file_id}]")


async def to_tool_result(
    result: CallToolResult, tool: str, files: FileAccess | None, output_bytes: int
) -> ToolResult:
    answer = _Answer(tool, files)
    for block in result.content:
        await answer.add(block)
    if not answer.texts and result.structured_content is not None:
        answer.lines.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(answer.lines)
    if result.is_error:
        text = error_output("tool_error", text or f"the MCP tool '{tool}' failed")
    return ToolResult(
        output=cap(text, output_bytes),
        image_file_ids=tuple(answer.images),
        file_ids=tuple(answer.others),
    )


def cap(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, saying so."""
    data = text.encode()
    if len(data) <= limit:
        return text
    note = f"\n[cut: the answer has {len(data)} bytes, {limit} are shown]"
    keep = max(0, limit - len(note.encode()))
    return data[:keep].decode(errors="ignore") + note


def _filename(tool: str, kind: str, mime: str | None, name: str | None) -> str:
    if name:
        clean = _UNSAFE.sub("_", name).strip("._")
        if clean:
            return clean[:100]
    mime = (mime or "").lower()
    extension = _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"
    return f"{_UNSAFE.sub('_', tool)[:50]}-{kind}{extension}"
