"""The OpenAI Images API: POST {base}/v1/images/generations, one synchronous call.

Also spoken by LocalAI and stable-diffusion.cpp's sd-server. Images are asked for as
`b64_json` (never handed to the model); a server that answers with `url`s anyway is
accepted, and the tool downloads them. GPT image models always answer in base64 and
refuse `response_format`, so it is not sent to them. The API has no negative prompt and
no free-form style: the style goes into the prompt, and the model is told the negative
prompt was ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assistd.tools.images.base import (
    GeneratedImage,
    ImageBatch,
    ImageError,
    ImageRequest,
    bearer,
    body_of,
    call,
    decode_base64,
    failed,
    styled_prompt,
)

if TYPE_CHECKING:
    from assistd.settings import ImageSettings
    from assistd.tools.http import OutboundClient

DEFAULT_BASE = "https://api.openai.com"
PATH = "/v1/images/generations"


class OpenAIImages:
    def __init__(self, settings: ImageSettings) -> None:
        self.settings = settings
        base = (settings.base_url or DEFAULT_BASE).rstrip("/")
        self.url = base.removesuffix("/v1") + PATH  # ".../v1", as OpenAI clients write it, too

    async def generate(self, request: ImageRequest, http: OutboundClient) -> ImageBatch:
        response = await call(
            http, "POST", self.url, self.settings, headers=bearer(self.settings),
            json=self._body(request),
        )  # fmt: skip
        if response.status != 200:
            raise failed(response)
        batch = ImageBatch(images=_images(body_of(response)))
        if request.negative_prompt:
            batch.notes.append("this image provider has no negative prompt; it was ignored")
        return batch

    def _body(self, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": styled_prompt(request),
            "n": request.n,
            "size": f"{request.width}x{request.height}",
        }
        model = self.settings.model
        if model:
            body["model"] = model
        if not (model or "").startswith("gpt-image"):
            body["response_format"] = "b64_json"
        return body


def _images(body: Any) -> list[GeneratedImage]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise ImageError("the image provider returned no image", "NoImage")
    images = []
    for item in data:
        if isinstance(item, dict) and item.get("b64_json"):
            images.append(GeneratedImage(data=decode_base64(item["b64_json"])))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            images.append(GeneratedImage(url=item["url"]))
        else:
            raise ImageError("the image provider returned an item with neither b64_json nor url")
    return images
