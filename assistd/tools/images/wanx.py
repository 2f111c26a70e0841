"""DashScope wanx text-to-image, as an async task: submit, then poll until it ends.

Submit: POST {base}/api/v1/services/aigc/text2image/image-synthesis with
`X-DashScope-Async: enable`; poll GET {base}/api/v1/tasks/{task_id} through PENDING and
RUNNING to SUCCEEDED, FAILED, CANCELED or UNKNOWN, first at once, then after 1 s, the
wait doubling up to 5 s (the dashscope SDK's pace). The results are URLs that expire in
about a day, so the tool downloads them at once. A call abandoned while its task is
still PENDING cancels the task (POST /api/v1/tasks/{id}/cancel), which costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from assistd.tools.http import OutboundError
from assistd.tools.images.base import (
    GeneratedImage,
    ImageBatch,
    ImageError,
    ImageRequest,
    bearer,
    body_of,
    call,
    failed,
)

if TYPE_CHECKING:
    from assistd.settings import ImageSettings
    from assistd.tools.http import OutboundClient

log = logging.getLogger("assistd.tools.images")
DEFAULT_BASE = "https://dashscope.aliyuncs.com"
DEFAULT_MODEL = "wanx-v1"
SUBMIT_PATH = "/api/v1/services/aigc/text2image/image-synthesis"
FIRST_WAIT_S, MAX_WAIT_S = 1.0, 5.0
ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})
_cancels: set[asyncio.Task[None]] = set()  # cancel calls still in flight (kept referenced)


class Wanx:
    def __init__(self, settings: ImageSettings) -> None:
        self.settings = settings
        base = (settings.base_url or DEFAULT_BASE).rstrip("/")
        self.base = base.removesuffix("/api/v1")  # either spelling of the base URL works
        self.headers = bearer(settings)

    async def generate(self, request: ImageRequest, http: OutboundClient) -> ImageBatch:
        task_id = await self._submit(request, http)
        seen = ["PENDING"]  # the task's latest status, as _wait finds it
        try:
            output = await self._wait(task_id, http, seen)
        except (asyncio.CancelledError, ImageError):
            if seen[-1] == "PENDING":
                self._cancel_later(task_id, http)
            raise
        return _results(output, request.n)

    async def _submit(self, request: ImageRequest, http: OutboundClient) -> str:
        response = await call(
            http, "POST", self.base + SUBMIT_PATH, self.settings,
            headers={**self.headers, "X-DashScope-Async": "enable"}, json=self._body(request),
        )  # fmt: skip
        if response.status != 200:
            raise failed(response)
        task_id = _output(body_of(response)).get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ImageError("the image provider accepted the task but gave no task id")
        return task_id

    def _body(self, request: ImageRequest) -> dict[str, Any]:
        prompt: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            prompt["negative_prompt"] = request.negative_prompt
        parameters: dict[str, Any] = {"size": f"{request.width}*{request.height}", "n": request.n}
        if request.style:
            parameters["style"] = _style(request.style)
        model = self.settings.model or DEFAULT_MODEL
        return {"model": model, "input": prompt, "parameters": parameters}

    async def _wait(self, task_id: str, http: OutboundClient, seen: list[str]) -> dict[str, Any]:
        wait = FIRST_WAIT_S
        while True:
            response = await call(
                http, "GET", f"{self.base}/api/v1/tasks/{task_id}", self.settings,
                headers=self.headers,
            )  # fmt: skip
            if response.status != 200:
                raise failed(response)
            output = _output(body_of(response))
            seen.append(str(output.get("task_status")))
            if seen[-1] in ENDED:
                return output
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_WAIT_S)

    def _cancel_later(self, task_id: str, http: OutboundClient) -> None:
        """Cancels the task in the background: the caller is already gone."""

        async def cancel() -> None:
            url = f"{self.base}/api/v1/tasks/{task_id}/cancel"
            try:
                await http.request("POST", url, trusted=True, headers=self.headers, timeout_s=10)
            except OutboundError as exc:
                log.info("could not cancel the wanx task %s: %s", task_id, exc)

        task = asyncio.get_running_loop().create_task(cancel())
        _cancels.add(task)
        task.add_done_callback(_cancels.discard)


def _output(body: Any) -> dict[str, Any]:
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, dict):
        raise ImageError("the image provider's answer has no 'output' object")
    return output


def _results(output: dict[str, Any], wanted: int) -> ImageBatch:
    status = output.get("task_status")
    if status != "SUCCEEDED":
        why = ": ".join(str(output[k]) for k in ("code", "message") if output.get(k))
        code = str(output.get("code") or "TaskFailed")
        raise ImageError(f"the image task ended {status}" + (f" ({why})" if why else ""), code)
    batch = ImageBatch(images=[])
    for item in output.get("results") or []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            batch.images.append(GeneratedImage(url=item["url"]))
        elif isinstance(item, dict):
            batch.notes.append(f"one image failed: {item.get('code')}: {item.get('message')}")
    if not batch.images:
        raise ImageError("the image task succeeded but returned no image", "NoImage")
    if len(batch.images) < wanted and not batch.notes:
        batch.notes.append(f"the provider made {len(batch.images)} of {wanted} images")
    return batch


def _style(style: str) -> str:
    """wanx's spelling of a style: `<watercolor>`."""
    name = style.strip().strip("<>").strip().lower()
    return f"<{name}>"
