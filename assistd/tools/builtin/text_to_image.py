"""`text_to_image` (alias `wanx`): a prompt in, pictures out, shown to the user.

The arguments are wanx's (prompt, negative_prompt, size "W*H", n, style); the configured
provider (`[image]`: wanx, openai or a1111) makes the images. Each image is checked to be
one (Pillow), stored as an assistd File, and returned with its signed, expiring link: the
reply shows it, and the step's output lists `{"results": [{"url", "file_id"}]}`. Image
URLs a provider returns are downloaded through the SSRF guard, like any URL that did not
come from the operator.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from PIL import Image

from assistd.tools.base import JsonDict, ToolContext, ToolResult
from assistd.tools.http import OutboundError
from assistd.tools.images.a1111 import A1111
from assistd.tools.images.base import (
    MAX_IMAGES,
    GeneratedImage,
    ImageError,
    ImageProvider,
    ImageRequest,
)
from assistd.tools.images.openai_images import OpenAIImages
from assistd.tools.images.wanx import Wanx

if TYPE_CHECKING:
    from assistd.settings import ImageSettings, Settings
    from assistd.tools.http import OutboundClient

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # one downloaded image
MAX_PIXELS = 40_000_000
MIN_SIDE, MAX_SIDE = 64, 4096
DEFAULT_SIZE = "1024*1024"
SIZE = re.compile(r"^\s*(\d{1,5})\s*[*xX\u00d7]\s*(\d{1,5})\s*$")
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
STYLES = (
    "<auto>", "<photography>", "<portrait>", "<3d cartoon>", "<anime>", "<oil painting>",
    "<watercolor>", "<sketch>", "<chinese painting>", "<flat illustration>",
)  # fmt: skip
PROVIDERS: dict[str, Callable[[ImageSettings], ImageProvider]] = {
    "wanx": Wanx,
    "openai": OpenAIImages,
    "a1111": A1111,
}


class TextToImage:
    description = (
        "Draws pictures from a text description and shows them to the user. Write the "
        "prompt in detail: subject, setting, colours, composition."
    )
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "What to draw, in detail."},
            "negative_prompt": {"type": "string", "description": "What the picture must not show."},
            "size": {
                "type": "string",
                "description": f"Width*height in pixels, e.g. {DEFAULT_SIZE} (the default).",
            },
            "n": {
                "type": "integer", "minimum": 1,
                "description": f"How many pictures, 1 (the default) to {MAX_IMAGES}.",
            },
            "style": {"type": "string", "description": "A style: " + ", ".join(STYLES) + "."},
        },
        "required": ["prompt"],
    }  # fmt: skip

    def __init__(self, name: str, settings: ImageSettings) -> None:
        self.name = name
        self.settings = settings
        self.timeout_s = settings.timeout_s  # the whole call, polling and downloads included
        self.provider = PROVIDERS[settings.provider](settings)

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        request = image_request(args)
        if isinstance(request, str):
            return _failure("InvalidParameter", request)
        if context.files is None:
            return _failure("NoStorage", "this server cannot store files for this run")
        notes = []
        if int(args.get("n") or 1) > MAX_IMAGES:
            notes.append(f"only {MAX_IMAGES} images were made, the most one call may ask for")
        try:
            async with asyncio.timeout(self.timeout_s):
                images = await self._generate(request, context.require_http(), notes)
        except TimeoutError:
            return _failure("Timeout", f"no image came within {self.timeout_s:g} seconds")
        except ImageError as exc:
            return _failure(exc.code, str(exc))
        saved = []
        for index, (data, extension) in enumerate(images, 1):
            file_id = await context.files.save(f"{self.name}-{index}.{extension}", data)
            saved.append((file_id, context.files.link(file_id)))
        results = [{"url": url, "file_id": file_id} for file_id, url in saved]
        return ToolResult(
            output=_told(saved, notes),
            display=json.dumps({"results": results}, ensure_ascii=False),
            image_file_ids=tuple(file_id for file_id, _ in saved),
        )

    async def _generate(
        self, request: ImageRequest, http: OutboundClient, notes: list[str]
    ) -> list[tuple[bytes, str]]:
        batch = await self.provider.generate(request, http)
        notes.extend(batch.notes)
        return [await self._fetch(image, http) for image in batch.images[:MAX_IMAGES]]

    async def _fetch(self, image: GeneratedImage, http: OutboundClient) -> tuple[bytes, str]:
        """The image's bytes (downloaded through the guard if only a URL came) and the
        file extension of its format."""
        data = image.data
        if data is None:
            try:
                response = await http.request(
                    "GET", str(image.url), max_bytes=MAX_IMAGE_BYTES, timeout_s=self.timeout_s
                )
            except OutboundError as exc:
                raise ImageError(f"the image could not be downloaded: {exc}", "Download") from None
            if response.status != 200:
                why = f"downloading the image answered HTTP {response.status}"
                raise ImageError(why, "Download")
            data = response.content
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageError(f"the image is larger than {MAX_IMAGE_BYTES} bytes", "TooLarge")
        return data, await asyncio.to_thread(image_format, data)

    async def close(self) -> None:
        return None


def image_request(args: JsonDict) -> ImageRequest | str:
    """The request the arguments ask for, or what is wrong with them (for the model)."""
    prompt = str(args.get("prompt") or "").strip()
    if not prompt:
        return "'prompt' is empty: say what to draw"
    size = str(args.get("size") or DEFAULT_SIZE)
    match = SIZE.match(size)
    if match is None:
        return f"'size' must be width*height in pixels, like {DEFAULT_SIZE}, not '{size[:40]}'"
    width, height = int(match[1]), int(match[2])
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        return f"'size' sides must be between {MIN_SIDE} and {MAX_SIDE} pixels, not {size}"
    style = str(args.get("style") or "").strip()
    return ImageRequest(
        prompt=prompt,
        width=width,
        height=height,
        n=min(max(int(args.get("n") or 1), 1), MAX_IMAGES),
        negative_prompt=str(args.get("negative_prompt") or "").strip() or None,
        style=None if style.strip("<>").lower() in ("", "auto") else style,
    )


def image_format(data: bytes) -> str:
    """The file extension of the image in `data`; ImageError if it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"the image is too large ({width}x{height})", "TooLarge")
            image.verify()  # the whole file, without decoding it
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        why = "the provider sent something that is not a valid image"
        raise ImageError(why, "NotAnImage") from exc
    if kind not in FORMATS:
        raise ImageError(f"the provider sent an image in an unsupported format ({kind})", "Format")
    return FORMATS[kind]


def _told(saved: list[tuple[str, str]], notes: list[str]) -> str:
    """What the model reads: the images are made and shown; their links."""
    count = "The image was" if len(saved) == 1 else f"{len(saved)} images were"
    lines = [
        f"{count} made and shown to the user with your answer; there is no need to repeat "
        "the link. Describe the picture briefly if it helps."
    ]
    lines += [f"- {file_id}: {url}" for file_id, url in saved]
    lines += [f"Note: {note}." for note in notes]
    return "\n".join(lines)


def _failure(code: str, message: str) -> ToolResult:
    return ToolResult(
        output=f"Error: {message}. No image was made; tell the user, or try again differently.",
        display=json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False),
    )


def _tool(name: str, settings: Settings) -> TextToImage | None:
    return None if settings.image is None else TextToImage(name, settings.image)


def factory(settings: Settings) -> TextToImage | None:
    return _tool("text_to_image", settings)


def wanx_factory(settings: Settings) -> TextToImage | None:
    return _tool("wanx", settings)
