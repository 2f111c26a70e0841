"""The image providers of text_to_image, each against a fake server speaking its protocol
over real HTTP through the guarded outbound client: what goes on the wire (auth, the
mapping of wanx's arguments), what comes back, and each way it fails."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from assistd.settings import ImageSettings, OutboundSettings
from assistd.tools.builtin.text_to_image import PROVIDERS, image_format, image_request
from assistd.tools.http import OutboundClient
from assistd.tools.images.base import ImageError, ImageProvider, ImageRequest
from tests.support.fake_images import PNG, WANX_SUBMIT, Script, fake_images

KEY = "sk-provider-key"
CAT = ImageRequest(prompt="a ragdoll cat", width=768, height=512, n=2,
                   negative_prompt="dogs", style="<watercolor>")  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    yield client
    await client.close()


async def _until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (the condition is another thread's)
            await asyncio.sleep(0.02)


def provider(kind: str, base_url: str, key: str = KEY, **more: Any) -> ImageProvider:
    settings = ImageSettings(provider=kind, base_url=base_url, api_key=key, **more)
    return PROVIDERS[kind](settings)


async def test_wanx_submits_a_task_and_polls_it_to_success(http: OutboundClient) -> None:
    with fake_images("wanx", KEY) as fake:
        batch = await provider("wanx", fake.base_url).generate(CAT, http)
        [submit] = fake.calls(WANX_SUBMIT)
        polls = [s for s in fake.seen if s.method == "GET" and "/tasks/" in s.path]
    assert submit.headers["authorization"] == f"Bearer {KEY}"
    assert submit.headers["x-dashscope-async"] == "enable"
    assert submit.body == {
        "model": "wanx-v1",
        "input": {"prompt": "a ragdoll cat", "negative_prompt": "dogs"},
        "parameters": {"size": "768*512", "n": 2, "style": "<watercolor>"},
    }
    assert len(polls) == 2  # RUNNING, then SUCCEEDED
    assert all(p.headers["authorization"] == f"Bearer {KEY}" for p in polls)
    assert [i.url is not None and "/images/" in i.url for i in batch.images] == [True, True]
    assert batch.notes == []


async def test_wanx_base_url_may_include_api_v1(http: OutboundClient) -> None:
    with fake_images("wanx", KEY) as fake:
        await provider("wanx", fake.base_url + "/api/v1/", model="wanx2.1-t2i-turbo").generate(
            ImageRequest(prompt="x", width=1024, height=1024), http
        )
        [submit] = fake.calls(WANX_SUBMIT)
    assert submit.body["model"] == "wanx2.1-t2i-turbo"
    assert submit.body["parameters"] == {"size": "1024*1024", "n": 1}


async def test_a_failed_wanx_task_says_why(http: OutboundClient) -> None:
    script = Script(fail=("DataInspectionFailed", "Input data may contain inappropriate content."))
    with (
        fake_images("wanx", KEY, script) as fake,
        pytest.raises(ImageError, match=r"ended FAILED .*inappropriate content") as raised,
    ):
        await provider("wanx", fake.base_url).generate(CAT, http)
    assert raised.value.code == "DataInspectionFailed"


async def test_a_wrong_key_is_named_as_the_problem(http: OutboundClient) -> None:
    for kind in ("wanx", "openai", "a1111"):
        with (
            fake_images(kind, KEY) as fake,
            pytest.raises(ImageError, match=r"refused the configured key.*401") as raised,
        ):
            await provider(kind, fake.base_url, key="wrong").generate(CAT, http)
        assert raised.value.code == "Auth"


async def test_an_abandoned_pending_wanx_task_is_cancelled(http: OutboundClient) -> None:
    with fake_images("wanx", KEY, Script(pending_forever=True)) as fake:
        call = asyncio.create_task(provider("wanx", fake.base_url).generate(CAT, http))
        await _until(lambda: any(s.method == "GET" for s in fake.seen))  # polled: PENDING
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await _until(lambda: bool(fake.cancelled))
        [task_id] = fake.task_ids
        assert fake.cancelled == [task_id]
        [cancel] = [s for s in fake.seen if s.path.endswith("/cancel")]
        assert cancel.path == f"/api/v1/tasks/{task_id}/cancel"
        assert cancel.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("answer", ["b64_json", "url"])
async def test_openai_images_in_either_answer_form(http: OutboundClient, answer: str) -> None:
    with fake_images("openai", KEY, Script(answer=answer)) as fake:
        batch = await provider("openai", fake.base_url + "/v1").generate(CAT, http)
        [call] = fake.calls("/v1/images/generations")
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.body == {
        "prompt": "a ragdoll cat, in watercolor style",  # no style parameter: into the prompt
        "n": 2,
        "size": "768x512",
        "response_format": "b64_json",
    }
    if answer == "b64_json":
        assert [i.data for i in batch.images] == [PNG, PNG]
    else:
        assert all(i.data is None and i.url for i in batch.images)
    assert batch.notes == ["this image provider has no negative prompt; it was ignored"]


async def test_gpt_image_models_are_not_sent_a_response_format(http: OutboundClient) -> None:
    with fake_images("openai", KEY) as fake:
        await provider("openai", fake.base_url, model="gpt-image-1").generate(
            ImageRequest(prompt="x", width=1024, height=1024), http
        )
        [call] = fake.calls("/v1/images/generations")
    assert call.body == {"prompt": "x", "n": 1, "size": "1024x1024", "model": "gpt-image-1"}


async def test_a1111_txt2img_with_basic_auth(http: OutboundClient) -> None:
    with fake_images("a1111", "painter:secret") as fake:
        batch = await provider(
            "a1111", fake.base_url, key="painter:secret", model="sdxl.safetensors"
        ).generate(CAT, http)
        [call] = fake.calls("/sdapi/v1/txt2img")
    basic = base64.b64encode(b"painter:secret").decode()
    assert call.headers["authorization"] == f"Basic {basic}"
    assert call.body == {
        "prompt": "a ragdoll cat, in watercolor style",
        "negative_prompt": "dogs",
        "width": 768,
        "height": 512,
        "batch_size": 2,
        "n_iter": 1,
        "override_settings": {"sd_model_checkpoint": "sdxl.safetensors"},
    }
    assert [i.data for i in batch.images] == [PNG, PNG]


async def test_throttled_calls_are_tried_again(http: OutboundClient) -> None:
    with fake_images("openai", KEY, Script(throttle=2)) as fake:
        batch = await provider("openai", fake.base_url).generate(CAT, http)
        assert len(fake.calls("/v1/images/generations")) == 3
    assert len(batch.images) == 2
    with (
        fake_images("openai", KEY, Script(throttle=5)) as fake,
        pytest.raises(ImageError, match="HTTP 429: Throttling"),
    ):
        await provider("openai", fake.base_url).generate(CAT, http)


def test_a1111_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match=r"image.base_url is required for the a1111 provider"):
        ImageSettings(provider="a1111")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"prompt": "cat"}, ImageRequest("cat", 1024, 1024)),
        ({"prompt": " cat ", "size": "720x1280", "n": 9, "style": "<auto>"},
         ImageRequest("cat", 720, 1280, n=4)),
        ({"prompt": "cat", "style": "anime", "negative_prompt": "  "},
         ImageRequest("cat", 1024, 1024, style="anime")),
        ({"prompt": "  "}, "'prompt' is empty: say what to draw"),
        ({"prompt": "cat", "size": "big"},
         "'size' must be width*height in pixels, like 1024*1024, not 'big'"),
        ({"prompt": "cat", "size": "10*10"},
         "'size' sides must be between 64 and 4096 pixels, not 10*10"),
    ],
)  # fmt: skip
def test_arguments_as_wanx_has_them(args: dict[str, object], expected: object) -> None:
    assert image_request(args) == expected


def test_only_real_images_pass() -> None:
    assert image_format(PNG) == "png"
    with pytest.raises(ImageError, match="not a valid image"):
        image_format(b"<html>not an image</html>")
    with pytest.raises(ImageError, match="not a valid image"):
        image_format(PNG[:40])  # cut short
