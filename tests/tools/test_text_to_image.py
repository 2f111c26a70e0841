"""`text_to_image` (alias `wanx`) through the real server and the dashscope SDK, with each
image provider a fake server speaking its protocol: the picture becomes a File of the
run's workspace, shown in the reply, downloadable through the Files API and through its
signed link without an API key; failures become outputs the model can act on."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.fake_images import PNG, WANX_SUBMIT, FakeImages, Script, fake_images
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer, run_server
from tests.tools.helpers import Conversation, converse, sdk_on

KEYS = {"wanx": "sk-wanx-key", "openai": "sk-openai-key", "a1111": "painter:secret"}
DRAW = {"prompt": "a ragdoll cat on a sofa", "size": "512*512", "negative_prompt": "dogs"}
LINK = re.compile(r"(http://\S+/links/files/(file[-_][\w-]+)\?w=[^&\s]+&e=\d+&s=[\w-]+)")


@dataclass
class Painter:
    server: RunningServer
    provider: FakeImages


@contextmanager
def painter(kind: str, workdir: Path, fake_model: FakeModel) -> Iterator[Painter]:
    """A server whose image provider is a fake `kind` server."""
    with fake_images(kind, KEYS[kind]) as provider:  # type: ignore[arg-type]
        image = {"provider": kind, "base_url": provider.base_url, "api_key": KEYS[kind]}
        with run_server(
            workdir,
            ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
            ASSISTD_IMAGE=json.dumps(image),
            # The fakes hand out image URLs on 127.0.0.1, which the guard refuses otherwise.
            ASSISTD_OUTBOUND=json.dumps({"allow_networks": ["127.0.0.0/8"]}),
        ) as server:
            yield Painter(server, provider)


@pytest.fixture(scope="module")
def wanx_painter(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[Painter]:
    with painter("wanx", tmp_path_factory.mktemp("wanx"), fake_model) as running:
        yield running


@pytest.fixture(scope="module")
def openai_painter(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[Painter]:
    with painter("openai", tmp_path_factory.mktemp("openai"), fake_model) as running:
        yield running


@pytest.fixture(scope="module")
def a1111_painter(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[Painter]:
    with painter("a1111", tmp_path_factory.mktemp("a1111"), fake_model) as running:
        yield running


@pytest.fixture
def script_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("wanx_painter", "openai_painter"):
        if name in request.fixturenames:
            request.getfixturevalue(name).provider.server.state.script = Script()


def draw(painter: Painter, fake_model: FakeModel, kind: str = "text_to_image",
         args: dict[str, Any] | None = None) -> tuple[Conversation, str]:  # fmt: skip
    return converse(
        painter.server,
        fake_model,
        ToolCalls([(kind, args or DRAW)]),
        Reply("Here is your ragdoll cat."),
        tools=[{"type": kind, "description": "Draw pictures."}],
        question="Please help me draw a picture of a ragdoll cat.",
    )


def check_png(content: bytes) -> None:
    assert content == PNG
    with Image.open(io.BytesIO(content)) as image:
        image.load()
        assert image.format == "PNG"


def check_image_reply(conversation: Conversation, run_id: str) -> str:
    """The run made one picture: the model was told its link, which downloads it without
    a key, and the reply carries it as an image part whose file the Files API serves.
    Returns the file id."""
    [told] = conversation.told_model()
    [(url, file_id)] = LINK.findall(told)
    assert told.startswith("The image was made and shown to the user"), told
    response = httpx.get(url, timeout=30)  # no API key
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    check_png(response.content)
    reply = conversation.reply(run_id)
    images = [p["image_file"]["file_id"] for p in reply["content"] if p["type"] == "image_file"]
    assert images == [file_id], reply
    check_png(conversation.download(file_id))
    return file_id


@pytest.mark.parametrize("kind", ["wanx", "openai", "a1111"])
def test_each_provider_draws_a_picture_the_user_can_open(
    kind: str, fake_model: FakeModel, request: pytest.FixtureRequest
) -> None:
    running: Painter = request.getfixturevalue(f"{kind}_painter")
    with sdk_on(running.server):
        conversation, run_id = draw(running, fake_model)
        file_id = check_image_reply(conversation, run_id)
        [call] = conversation.tool_calls(run_id)
    assert call["type"] == "text_to_image"
    assert json.loads(call["text_to_image"]["input"]) == DRAW
    assert file_id in call["text_to_image"]["output"]
    generation = [s for s in running.provider.seen if s.method == "POST"]
    assert len(generation) == 1 and "ragdoll cat" in json.dumps(generation[0].body)


def test_wanx_polls_its_task_and_the_alias_works(
    wanx_painter: Painter, fake_model: FakeModel
) -> None:
    before = len(wanx_painter.provider.task_ids)
    with sdk_on(wanx_painter.server):
        conversation, run_id = draw(wanx_painter, fake_model, kind="wanx")
        check_image_reply(conversation, run_id)
        [call] = conversation.tool_calls(run_id)
    assert call["type"] == "wanx" and json.loads(call["wanx"]["input"]) == DRAW
    [task_id] = wanx_painter.provider.task_ids[before:]
    polls = wanx_painter.provider.calls(f"/api/v1/tasks/{task_id}")
    assert len(polls) == 2  # RUNNING, then SUCCEEDED
    submit = wanx_painter.provider.calls(WANX_SUBMIT)[-1]
    assert submit.body["parameters"] == {"size": "512*512", "n": 1}
    assert submit.body["input"]["negative_prompt"] == "dogs"


def test_a_failed_wanx_task_is_told_to_the_model(
    wanx_painter: Painter, fake_model: FakeModel, script_reset: None
) -> None:
    wanx_painter.provider.script.fail = (
        "DataInspectionFailed",
        "Input data may contain inappropriate content.",
    )
    with sdk_on(wanx_painter.server):
        conversation, run_id = draw(wanx_painter, fake_model)
        reply = conversation.reply(run_id)
    [told] = conversation.told_model()
    assert told == (
        "Error: the image task ended FAILED (DataInspectionFailed: Input data may contain "
        "inappropriate content.). No image was made; tell the user, or try again differently."
    )
    assert [p["type"] for p in reply["content"]] == ["text"]


def test_bad_arguments_are_told_without_calling_the_provider(
    wanx_painter: Painter, fake_model: FakeModel
) -> None:
    before = len(wanx_painter.provider.seen)
    with sdk_on(wanx_painter.server):
        conversation, _ = draw(wanx_painter, fake_model, args={"prompt": "cat", "size": "huge"})
    assert conversation.told_model() == [
        "Error: 'size' must be width*height in pixels, like 1024*1024, not 'huge'. No image "
        "was made; tell the user, or try again differently."
    ]
    assert len(wanx_painter.provider.seen) == before


def test_image_urls_are_downloaded_through_the_guard(
    openai_painter: Painter, fake_model: FakeModel, script_reset: None
) -> None:
    openai_painter.provider.script.answer = "url"
    with sdk_on(openai_painter.server):
        conversation, run_id = draw(openai_painter, fake_model)
        check_image_reply(conversation, run_id)
        # A URL to a private address (not in allow_networks) is never fetched.
        openai_painter.provider.script.result_url = "http://10.255.255.1/cat.png"
        conversation, run_id = draw(openai_painter, fake_model)
        reply = conversation.reply(run_id)
    [told] = conversation.told_model()
    assert told.startswith(
        "Error: the image could not be downloaded: refused to connect to 10.255.255.1: "
    ), told
    assert [p["type"] for p in reply["content"]] == ["text"]


def test_the_step_lists_the_results_and_the_reply_links_the_picture(
    wanx_painter: Painter, fake_model: FakeModel
) -> None:
    with sdk_on(wanx_painter.server):
        conversation, run_id = draw(wanx_painter, fake_model)
        [call] = conversation.tool_calls(run_id)
        reply = conversation.reply(run_id)
    shown = json.loads(call["text_to_image"]["output"])
    [result] = shown["results"]
    assert set(result) == {"url", "file_id"}
    [text] = [p["text"]["value"] for p in reply["content"] if p["type"] == "text"]
    [(url, file_id)] = LINK.findall(text)
    assert f"]({url})" in text and file_id == result["file_id"]
    check_png(httpx.get(url, timeout=30).content)
