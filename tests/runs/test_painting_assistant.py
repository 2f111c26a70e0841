"""The painting assistant of the getting-started guide (seed flow F1), unchanged but for
the base URL, on a server with a search provider (a fake SearXNG) and an image provider
(a fake wanx) configured: the steps show the search results, and the answer shows a
picture whose signed link opens without an API key and whose file id downloads through
the Files API. The model is scripted to search, then draw, then answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from urllib.parse import parse_qs, urlsplit

import dashscope
import httpx
import pytest
from dashscope import Messages, Runs, Steps, Threads

from assistd.core.file_links import FileLinks
from assistd.secrets import derived_key, server_secret
from assistd.settings import Settings
from tests.conftest import make_workspace
from tests.runs.test_seed_flows import CAT, check_status, create_painter, dump
from tests.support.fake_images import PNG, fake_images
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.listener import Answer, Seen, listener
from tests.support.server import RunningServer, run_server

NEEDS_SEARCH = pytest.mark.skipif(
    "quark_search" not in {ep.name for ep in entry_points(group="assistd.tools")},
    reason="the quark_search tool (web search, another branch of issue 8) is not installed; "
    "this test runs once it is merged",
)
pytestmark = NEEDS_SEARCH

WANX_KEY = "sk-wanx-painter"
RESULTS = [
    {
        "url": "https://en.wikipedia.org/wiki/Ragdoll",
        "title": "Ragdoll - Wikipedia",
        "content": "The Ragdoll is a cat breed with blue eyes and a colourpoint coat.",
        "engine": "wikipedia",
        "score": 3.0,
    },
    {
        "url": "https://cats.example.org/ragdoll",
        "title": "Ragdoll cats",
        "content": "Large, calm and affectionate.",
        "engine": "duckduckgo",
        "score": 1.5,
    },
]
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\((http://[^)\s]+/links/files/[^)\s]+)\)")


def searxng(seen: Seen) -> Answer:
    """SearXNG's JSON API (format=json enabled in its settings.yml)."""
    query = parse_qs(urlsplit(seen.path).query)
    if not seen.path.startswith("/search") or query.get("format") != ["json"]:
        return Answer(status=403, body=b"Forbidden", headers={"Content-Type": "text/html"})
    empty: list[object] = []
    body = {"query": query["q"][0], "number_of_results": 2, "results": RESULTS, "answers": empty,
            "infoboxes": empty, "suggestions": empty, "unresponsive_engines": empty}  # fmt: skip
    return Answer(body=json.dumps(body).encode())


@dataclass
class Painting:
    server: RunningServer
    model: FakeModel
    searches: list[Seen]


@pytest.fixture(scope="module")
def painting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Painting]:
    model = FakeModel().start()
    with (
        listener(searxng) as search,
        fake_images("wanx", WANX_KEY) as wanx,
        run_server(
            tmp_path_factory.mktemp("painting"),
            ASSISTD_OPENAI_BASE_URL=model.base_url,
            ASSISTD_SEARCH=json.dumps({"provider": "searxng", "base_url": search.url}),
            ASSISTD_IMAGE=json.dumps(
                {"provider": "wanx", "base_url": wanx.base_url, "api_key": WANX_KEY}
            ),
            ASSISTD_OUTBOUND=json.dumps({"allow_networks": ["127.0.0.0/8"]}),  # wanx's image URLs
        ) as server,
    ):
        yield Painting(server, model, search.seen)
    model.stop()


@pytest.fixture
def key(painting: Painting) -> Iterator[str]:
    headers = {"Authorization": f"Bearer {painting.server.admin_key}"}
    with httpx.Client(base_url=painting.server.base_url, headers=headers, timeout=30) as admin:
        _, api_key = make_workspace(admin)
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url, dashscope.api_key = painting.server.dashscope_url, api_key
    try:
        yield api_key
    finally:
        dashscope.base_http_api_url, dashscope.api_key = saved


def test_the_painting_assistant_searches_and_draws(
    painting: Painting, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    painting.model.script(
        "qwen-max",
        ToolCalls([("quark_search", {"query": "ragdoll cat appearance"})]),
        ToolCalls([("text_to_image", {"prompt": "a fluffy ragdoll cat with blue eyes"})]),
        Reply("Here is your ragdoll cat, blue-eyed and calm."),
    )
    # ---- the guide's code, unchanged ----
    assistant = create_painter()
    thread = Threads.create()
    assert check_status(thread, "create thread")
    message = Messages.create(thread.id, content=CAT)
    assert check_status(message, "create message")
    run = Runs.create(thread.id, assistant_id=assistant.id)
    assert check_status(run, "create run")
    run = Runs.wait(run.id, thread_id=thread.id)
    print(run.status)
    msgs = Messages.list(thread.id)
    assert check_status(msgs, "list messages")
    printed = dump(msgs.data[0])
    print(printed)
    # ---- what the guide shows ----
    assert run.status == "completed"
    assert "failed: code=" not in capsys.readouterr().out
    [search] = painting.searches
    assert parse_qs(urlsplit(search.path).query)["q"] == ["ragdoll cat appearance"]
    steps = Steps.list(run.id, thread_id=thread.id, order="asc").data
    calls = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    assert [c["type"] for c in calls] == ["quark_search", "text_to_image"]
    found = json.loads(calls[0]["quark_search"]["output"])  # as the guide's readers parse it
    assert found[0]["mainbody"] == RESULTS[0]["content"]
    assert found[0]["url"] == RESULTS[0]["url"]

    answer = json.loads(printed)
    [text] = [p["text"]["value"] for p in answer["content"] if p["type"] == "text"]
    assert text.startswith("Here is your ragdoll cat, blue-eyed and calm.")
    [link] = IMAGE_LINK.findall(text)
    opened = httpx.get(link, timeout=30)  # in a browser: no API key
    assert opened.status_code == 200 and opened.headers["content-type"] == "image/png"
    assert opened.content == PNG

    # The image part's file id (which the SDK drops) downloads through the Files API.
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=painting.server.dashscope_url, headers=headers) as raw:
        reply = raw.get(f"/threads/{thread.id}/messages/{answer['id']}").json()
        [file_id] = [p["image_file"]["file_id"] for p in reply["content"]
                     if p["type"] == "image_file"]  # fmt: skip
        assert f"/links/files/{file_id}?" in link
        assert raw.get(f"/files/{file_id}/content").content == PNG

    # A tampered link, or the same link once expired, is refused.
    signature = parse_qs(urlsplit(link).query)["s"][0]
    assert httpx.get(link.replace(signature, signature[::-1]), timeout=30).status_code == 403
    secret = server_secret(Settings(data_dir=painting.server.data_dir))
    links = FileLinks(derived_key(secret, "file-links"), painting.server.base_url, 60)
    workspace = parse_qs(urlsplit(link).query)["w"][0]
    expired = links.url(workspace, file_id, now=0)
    refused = httpx.get(expired, timeout=30)
    assert refused.status_code == 403 and "expired" in refused.json()["message"]
