"""The image provider contract: one method, `generate(request, http)`.

A provider turns one request (wanx's arguments, already checked) into images, each as
bytes or as a URL the tool downloads through the guarded client. Errors are ImageError,
whose str() is a sentence the model can act on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from assistd.tools.http import OutboundError, OutboundResponse

if TYPE_CHECKING:
    from assistd.settings import ImageSettings
    from assistd.tools.http import OutboundClient

MAX_IMAGES = 4
# A provider's answer may carry several base64 images; it is trusted, but still bounded.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
RETRIES = 2  # more tries of a call answered 429 or 5xx
RETRY_CAP_S = 10.0  # the longest Retry-After honoured


class ImageError(Exception):
    """The provider could not make the images; str() says why, for the model."""

    def __init__(self, message: str, code: str = "ImageProviderError") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    width: int
    height: int
    n: int = 1
    negative_prompt: str | None = None
    style: str | None = None  # wanx's style, e.g. "<watercolor>"


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes | None = None  # the image itself, or
    url: str | None = None  # where to fetch it (a provider's short-lived link)


@dataclass(slots=True)
class ImageBatch:
    images: list[GeneratedImage]
    notes: list[str] = field(default_factory=list)  # told to the model: what was ignored, ...


class ImageProvider(Protocol):
    async def generate(self, request: ImageRequest, http: OutboundClient) -> ImageBatch: ...


def styled_prompt(request: ImageRequest) -> str:
    """The prompt with the style folded in, for providers that have no style parameter."""
    if not request.style:
        return request.prompt
    return f"{request.prompt}, in {request.style.strip('<>')} style"


def bearer(settings: ImageSettings) -> dict[str, str]:
    key = settings.key()
    return {"Authorization": f"Bearer {key}"} if key else {}


async def call(
    http: OutboundClient, method: str, url: str, settings: ImageSettings, **options: Any
) -> OutboundResponse:
    """A call to the configured (trusted) provider, tried again on 429 and 5xx."""
    timeout = settings.timeout_s
    for attempt in range(RETRIES + 1):
        try:
            response = await http.request(
                method, url, trusted=True, timeout_s=timeout, read_timeout_s=timeout,
                max_bytes=MAX_ANSWER_BYTES, **options,
            )  # fmt: skip
        except OutboundError as exc:
            raise ImageError(f"the image provider could not be reached: {exc}") from None
        if (response.status != 429 and response.status < 500) or attempt == RETRIES:
            return response
        await asyncio.sleep(_retry_after(response, attempt))
    raise AssertionError("unreachable")


def _retry_after(response: OutboundResponse, attempt: int) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), RETRY_CAP_S)
    except ValueError:
        return float(2**attempt)


def error_text(response: OutboundResponse) -> str:
    """The provider's own error message, from the shapes the three protocols use."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text.strip()[:300] or f"HTTP {response.status}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            body = error
        elif isinstance(error, str):
            return _joined(error, body.get("detail") or body.get("errors"))
        return _joined(body.get("code"), body.get("message") or body.get("detail"))
    return json.dumps(body)[:300]


def _joined(code: Any, message: Any) -> str:
    parts = [str(p) for p in (code, message) if p]
    return (": ".join(parts) or "no error message")[:300]


def failed(response: OutboundResponse) -> ImageError:
    """The error of a provider's non-2xx answer."""
    detail = f"HTTP {response.status}: {error_text(response)}"
    if response.status in (401, 403):
        return ImageError(f"the image provider refused the configured key ({detail})", "Auth")
    return ImageError(f"the image provider answered {detail}")


def body_of(response: OutboundResponse) -> Any:
    """The JSON of a provider's successful answer."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise ImageError("the image provider answered with something that is not JSON") from None


def decode_base64(text: Any) -> bytes:
    """An image sent as base64 (a data URL's prefix allowed, as some servers send it)."""
    if not isinstance(text, str) or not text:
        raise ImageError("the image provider sent an empty image")
    _, _, data = text.rpartition("base64,")
    try:
        return base64.b64decode(data, validate=False)
    except (ValueError, binascii.Error):
        raise ImageError("the image provider sent an image that is not valid base64") from None
