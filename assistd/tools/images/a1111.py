"""AUTOMATIC1111 (and Forge) web UI's API: POST {base}/sdapi/v1/txt2img, one synchronous
call answering base64 PNGs. A server started with `--api-auth user:password` takes that
pair as the key, sent as HTTP Basic; the configured model, if any, is the checkpoint."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from assistd.tools.images.base import (
    GeneratedImage,
    ImageBatch,
    ImageError,
    ImageRequest,
    body_of,
    call,
    decode_base64,
    failed,
    styled_prompt,
)

if TYPE_CHECKING:
    from assistd.settings import ImageSettings
    from assistd.tools.http import OutboundClient

PATH = "/sdapi/v1/txt2img"


class A1111:
    def __init__(self, settings: ImageSettings) -> None:
        self.settings = settings
        self.url = (settings.base_url or "").rstrip("/") + PATH
        key = settings.key()
        self.headers = {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()} \
            if key else {}  # fmt: skip

    async def generate(self, request: ImageRequest, http: OutboundClient) -> ImageBatch:
        response = await call(
            http, "POST", self.url, self.settings, headers=self.headers, json=self._body(request)
        )
        if response.status != 200:
            raise failed(response)
        body = body_of(response)
        images = body.get("images") if isinstance(body, dict) else None
        if not isinstance(images, list) or not images:
            raise ImageError("the image provider returned no image", "NoImage")
        # Extensions (ControlNet, ...) may append their own pictures after the batch.
        return ImageBatch(
            images=[GeneratedImage(data=decode_base64(i)) for i in images[: request.n]]
        )

    def _body(self, request: ImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": styled_prompt(request),
            "negative_prompt": request.negative_prompt or "",
            "width": request.width,
            "height": request.height,
            "batch_size": request.n,
            "n_iter": 1,
        }
        if self.settings.model:
            body["override_settings"] = {"sd_model_checkpoint": self.settings.model}
        return body
