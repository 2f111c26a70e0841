"""The playground at /ui in a real browser (Debian's chromium, headless) against the real
server and the scripted model: the key, assistants, a streamed chat with a code
interpreter call and its image, files and vector stores. Screenshots are kept in
test-artifacts/ui/."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from assistd.api.playground import PLAYGROUND_DIR
from tests.api.openai.file_search_helpers import ROME, search_then_cite
from tests.conftest import make_workspace
from tests.support.fake_model import FakeModel, Gate, Reply, ToolCalls
from tests.support.server import RunningServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

PLOT = """\
import matplotlib.pyplot as plt
xs = [x / 10 for x in range(-50, 51)]
plt.plot(xs, [x * x for x in xs])
plt.title("y = x^2")
plt.show()
print("plotted")
"""
ANSWER = "Here is the plot of y = x squared, drawn from minus five to five as you asked."
WAIT_MS = 60_000


def enter_key(page: Page, key: str) -> None:
    page.goto("/ui")
    page.fill("#key", key)
    page.click("#use-key")
    page.wait_for_selector("#tabs:not([hidden])")


def create_assistant(page: Page, name: str, model: str, *, code: bool = False) -> str:
    page.click("#tabs button[data-tab=assistants]")
    page.click("#new-assistant")
    page.fill("#a-name", name)
    page.fill("#a-model", model)
    page.fill("#a-instructions", "You draw plots with code.")
    if code:
        page.check("#a-code")
    page.click("#save-assistant")
    row = page.locator("#assistant-list tbody tr", has_text=name)
    row.wait_for()
    return str(row.get_attribute("data-assistant-id"))


def test_the_page_needs_no_key_and_loads_only_its_own_assets(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        page = client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, csp
        assert "http://" not in page.text and "https://" not in page.text
        # no inline script: every <script> has a src
        assert re.findall(r"<script\b[^>]*>", page.text) == [
            '<script type="module" src="ui/assets/app.js">'
        ]
        # every file of the page is served (a module left off the list would not load)
        for name in sorted(p.name for p in PLAYGROUND_DIR.iterdir() if p.name != "index.html"):
            asset = client.get(f"/ui/assets/{name}")
            assert asset.status_code == 200, name
            assert "https://" not in asset.text, name
        assert client.get("/ui/assets/app.js").headers["content-type"].startswith("text/javascript")
        for name in ("index.html", "..%2F..%2Fapp.py", "nope.js"):
            missing = client.get(f"/ui/assets/{name}")
            assert missing.status_code == 404 and missing.json()["code"] == "NotFound", name
        slash = client.get("/ui/")
        assert slash.status_code == 308 and slash.headers["location"] == "../ui"


def test_a_wrong_key_is_refused_and_not_kept(page: Page) -> None:
    page.goto("/ui")
    page.fill("#key", "sk-not-a-key-of-this-server-0000000000")
    page.click("#use-key")
    page.wait_for_selector("#notice.error")
    assert "refused the key" in page.inner_text("#notice")
    assert page.is_hidden("#tabs")
    assert page.evaluate("Object.keys(sessionStorage)") == []


def test_chat_streams_and_shows_the_code_call_and_its_image(
    page: Page, admin: httpx.Client, fake_model: FakeModel, artifacts: Path
) -> None:
    _, key = make_workspace(admin, "ui")
    model = fake_model.new_model(
        ToolCalls([("code_interpreter", {"code": PLOT})]), Reply(ANSWER, tokens_per_s=6)
    )
    enter_key(page, key)
    # the key: in this tab's session storage, in no cookie
    assert page.evaluate("Object.values(sessionStorage)") == [key]
    assert page.context.cookies() == []
    assistant_id = create_assistant(page, "Plotter", model, code=True)
    page.screenshot(path=artifacts / "assistants.png", full_page=True)

    page.click("#tabs button[data-tab=chat]")
    page.select_option("#chat-assistant", assistant_id)
    page.fill("#chat-input", "Plot y = x^2 from -5 to 5.")
    page.click("#send")
    reply = page.locator(".message.role-assistant .text")
    # streamed: part of the answer is on the page while the run still goes
    page.wait_for_function(
        """(answer) => {
            const text = document.querySelector(".message.role-assistant .text")?.textContent;
            const run = document.querySelector(".run")?.dataset.status;
            return text && text.length < answer.length && run === "in_progress";
        }""",
        arg=ANSWER,
        timeout=WAIT_MS,
    )
    page.screenshot(path=artifacts / "chat-streaming.png", full_page=True)
    page.wait_for_selector(".run[data-status=completed]", timeout=WAIT_MS)
    # the text's link to the image is left out: the image itself is shown below it
    assert reply.first.inner_text() == ANSWER

    call = page.locator(".run .tool-call.tool-code_interpreter")
    assert "plt.plot(xs" in call.locator("pre.code").inner_text()
    assert "plotted" in call.locator("pre.logs").inner_text()
    assert_image_shown(page, ".run .tool-call img.file-image")
    assert_image_shown(page, ".message.role-assistant img.file-image")
    page.screenshot(path=artifacts / "chat-done.png", full_page=True)

    # the thread again from the server, as after a reload: its steps and the image
    page.reload()
    page.wait_for_selector("#tabs:not([hidden])")
    thread_id = page.evaluate("JSON.parse(sessionStorage['assistd.playground.threads'])[0]")
    page.select_option("#chat-thread", thread_id)
    page.wait_for_selector(".run[data-status=completed] .tool-code_interpreter img.file-image")
    assert_image_shown(page, ".run .tool-call img.file-image")
    assert page.locator(".message.role-user").inner_text().endswith("Plot y = x^2 from -5 to 5.")
    page.screenshot(path=artifacts / "thread-reloaded.png", full_page=True)

    page.click("#forget-key")
    assert page.is_hidden("#tabs") and page.evaluate("Object.keys(sessionStorage)") == []


def assert_image_shown(page: Page, selector: str) -> None:
    """The image loaded (fetched with the key, shown from a blob: URL) and is a plot."""
    image = page.locator(selector).first
    image.wait_for(timeout=WAIT_MS)
    page.wait_for_function(
        "(s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth; }",
        arg=selector,
        timeout=WAIT_MS,
    )
    assert str(image.get_attribute("src")).startswith("blob:")
    assert image.evaluate("i => i.naturalWidth") > 100


def test_a_function_call_waits_for_the_output_typed_in(
    page: Page, admin: httpx.Client, fake_model: FakeModel, artifacts: Path
) -> None:
    _, key = make_workspace(admin, "ui")
    model = fake_model.new_model(
        ToolCalls([("get_weather", {"city": "Paris"})]), Reply("It is sunny in Paris.")
    )
    enter_key(page, key)
    page.click("#tabs button[data-tab=assistants]")
    page.fill("#a-name", "Weather")
    page.fill("#a-model", model)
    page.fill("#a-functions", "{not json")
    page.click("#save-assistant")
    page.wait_for_selector("#notice.error")
    assert page.inner_text("#notice").startswith("Functions: not JSON")
    page.fill("#a-functions", WEATHER)
    page.click("#save-assistant")
    row = page.locator("#assistant-list tbody tr", has_text="Weather")
    assert "function get_weather" in row.inner_text()

    page.click("#tabs button[data-tab=chat]")
    page.select_option("#chat-assistant", str(row.get_attribute("data-assistant-id")))
    page.fill("#chat-input", "Weather in Paris?")
    page.click("#send")
    page.wait_for_selector(".run[data-status=requires_action] .tool-outputs", timeout=WAIT_MS)
    assert 'get_weather({"city": "Paris"})' in page.inner_text(".tool-outputs")
    page.fill(".tool-outputs textarea", "sunny, 24 C")
    page.screenshot(path=artifacts / "function-call.png", full_page=True)
    page.click(".tool-outputs button")
    page.wait_for_selector(".run[data-status=completed]", timeout=WAIT_MS)
    assert page.inner_text(".message.role-assistant .text") == "It is sunny in Paris."
    assert "sunny, 24 C" in page.inner_text(".run .tool-function pre.logs")
    told = fake_model.requests(model)[-1]["messages"]
    assert told[-1]["role"] == "tool" and told[-1]["content"] == "sunny, 24 C"


WEATHER = """[{"name": "get_weather", "description": "The weather in a city.",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                 "required": ["city"]}}]"""


def test_files_vector_stores_and_assistants_are_managed(
    page: Page, admin: httpx.Client, server: RunningServer, artifacts: Path, tmp_path: Path
) -> None:
    _, key = make_workspace(admin, "ui")
    api = httpx.Client(
        base_url=f"{server.base_url}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    page.on("dialog", lambda dialog: dialog.accept())  # the "Delete ...?" confirmations
    enter_key(page, key)
    notes = tmp_path / "notes.md"
    notes.write_text("# Opening hours\nThe shop opens at nine and closes at five.\n")
    page.click("#tabs button[data-tab=files]")
    page.set_input_files("#upload-file", notes)
    page.click("#upload")
    file_row = page.locator("#file-list tbody tr", has_text="notes.md")
    file_id = str(file_row.get_attribute("data-file-id"))
    assert api.get(f"/files/{file_id}").json()["filename"] == "notes.md"

    page.click("#tabs button[data-tab=stores]")
    page.fill("#store-name", "Shop")
    page.select_option("#store-files", file_id)
    page.click("#create-store")
    store_row = page.locator("#store-list tbody tr", has_text="Shop")
    store_id = str(store_row.get_attribute("data-store-id"))
    store_row.get_by_role("button", name="Files").click()
    in_store = page.locator(f"#store-detail li[data-file-id={file_id}]")
    in_store.wait_for()
    assert store_files(api, store_id) == [file_id]
    in_store.get_by_role("button", name="Remove").click()
    in_store.wait_for(state="detached")
    assert store_files(api, store_id) == []
    page.select_option("#store-add-file", file_id)
    page.click("#store-detail >> text=Add file")
    in_store.wait_for()
    assert store_files(api, store_id) == [file_id]
    # the list is read again while the file is ingested, until it is
    ready = f"#store-list tr[data-store-id={store_id}] >> text=1 of 1 ready"
    page.wait_for_selector(ready, timeout=WAIT_MS)
    page.screenshot(path=artifacts / "vector-stores.png", full_page=True)

    assistant_id = create_assistant(page, "Shop helper", "fake-shop")
    row = page.locator(f"#assistant-list tr[data-assistant-id={assistant_id}]")
    row.get_by_role("button", name="Edit").click()
    assert page.input_value("#a-model") == "fake-shop"
    page.fill("#a-instructions", "Answer from the shop's notes.")
    page.check("#a-search")
    page.check("#a-code")
    page.select_option("#a-stores", store_id)
    page.select_option("#a-files", file_id)
    page.click("#save-assistant")
    page.wait_for_selector(
        f"#assistant-list tr[data-assistant-id={assistant_id}] >> text=file_search"
    )
    saved = api.get(f"/assistants/{assistant_id}").json()
    assert saved["instructions"] == "Answer from the shop's notes."
    assert sorted(t["type"] for t in saved["tools"]) == ["code_interpreter", "file_search"]
    assert saved["tool_resources"]["file_search"]["vector_store_ids"] == [store_id]
    assert saved["tool_resources"]["code_interpreter"]["file_ids"] == [file_id]
    page.screenshot(path=artifacts / "assistant-edited.png", full_page=True)

    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert api.get(f"/assistants/{assistant_id}").status_code == 404
    page.click("#tabs button[data-tab=stores]")
    store_row.get_by_role("button", name="Delete").click()
    store_row.wait_for(state="detached")
    assert api.get(f"/vector_stores/{store_id}").status_code == 404
    page.click("#tabs button[data-tab=files]")
    file_row.get_by_role("button", name="Delete").click()
    file_row.wait_for(state="detached")
    assert api.get(f"/files/{file_id}").status_code == 404
    api.close()


def test_the_form_keeps_what_was_typed_when_the_files_are_read_again(
    page: Page, admin: httpx.Client, tmp_path: Path
) -> None:
    """The file and vector-store lists load after the key is accepted and again after each
    upload or ingestion poll; reading them refills the form's two lists and nothing else."""
    _, key = make_workspace(admin, "ui")
    enter_key(page, key)
    page.click("#tabs button[data-tab=assistants]")
    page.fill("#a-name", "Half typed")
    page.fill("#a-model", "fake-half")
    page.check("#a-code")
    notes = tmp_path / "later.txt"
    notes.write_text("Uploaded while the form was half filled in.\n")
    page.click("#tabs button[data-tab=files]")
    page.set_input_files("#upload-file", notes)
    page.click("#upload")
    file_id = str(
        page.locator("#file-list tbody tr", has_text="later.txt").get_attribute("data-file-id")
    )
    page.click("#tabs button[data-tab=assistants]")
    page.locator(f"#a-files option[value={file_id}]").wait_for(state="attached")
    assert page.input_value("#a-name") == "Half typed"
    assert page.input_value("#a-model") == "fake-half"
    assert page.is_checked("#a-code")


def store_files(api: httpx.Client, store_id: str) -> list[str]:
    listed = api.get(f"/vector_stores/{store_id}/files")
    assert listed.status_code == 200, listed.text
    return [f["id"] for f in listed.json()["data"]]


def test_a_file_search_shows_its_results_and_their_text(
    page: Page, admin: httpx.Client, server: RunningServer, fake_model: FakeModel
) -> None:
    _, key = make_workspace(admin, "ui")
    api = httpx.Client(
        base_url=f"{server.base_url}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    model = search_then_cite(fake_model, "Colosseum spectators", "rome.txt")
    rome = api.post(
        "/files", files={"file": ("rome.txt", ROME.encode())}, data={"purpose": "assistants"}
    ).json()["id"]
    store = api.post("/vector_stores", json={"name": "Rome", "file_ids": [rome]}).json()["id"]
    deadline = time.monotonic() + WAIT_MS / 1000
    while api.get(f"/vector_stores/{store}").json()["status"] == "in_progress":
        assert time.monotonic() < deadline, "the file was not ingested"
        time.sleep(0.2)
    assistant = api.post(
        "/assistants",
        json={
            "name": "Guide", "model": model, "tools": [{"type": "file_search"}],
            "tool_resources": {"file_search": {"vector_store_ids": [store]}},
        },
    ).json()["id"]  # fmt: skip
    api.close()

    enter_key(page, key)
    page.select_option("#chat-assistant", assistant)
    page.fill("#chat-input", "How many people fit in the Colosseum?")
    page.click("#send")
    page.wait_for_selector(".run[data-status=completed]", timeout=WAIT_MS)
    results = page.inner_text(".run .tool-file_search .results")
    assert "rome.txt" in results and "80,000 spectators" in results
    reply = page.inner_text(".message.role-assistant .text")
    assert reply.startswith("The answer is in the files.【"), reply


def test_a_run_is_cancelled_from_the_page(
    page: Page, admin: httpx.Client, fake_model: FakeModel
) -> None:
    _, key = make_workspace(admin, "ui")
    gate = Gate("too late")  # the model says nothing until the test is done
    model = fake_model.new_model(gate)
    try:
        enter_key(page, key)
        assistant_id = create_assistant(page, "Slow", model)
        page.click("#tabs button[data-tab=chat]")
        page.select_option("#chat-assistant", assistant_id)
        page.fill("#chat-input", "Take your time.")
        page.click("#send")
        page.wait_for_selector(".run[data-status=in_progress]", timeout=WAIT_MS)
        page.click("#cancel-run")
        page.wait_for_selector(".run[data-status=cancelled]", timeout=WAIT_MS)
        page.wait_for_selector("#cancel-run", state="hidden", timeout=WAIT_MS)
        assert page.is_enabled("#send")
        page.fill("#open-thread-id", "thread_nothere")
        page.click("#open-thread button")
        page.wait_for_selector("#notice.error")
        assert "thread_nothere" in page.inner_text("#notice")
    finally:
        gate.open()


STREAM = (
    ": keep-alive\n\n"
    'event: thread.message.delta\ndata: {"text": "two\\nlines"}\n\n'
    'id: 3\nevent: thread.run.completed\ndata: {"status": "completed"}\n\n'
    "event: done\ndata: [DONE]\n\n"
    "event: after\ndata: {}\n\n"
)


def test_the_event_parser_reads_a_stream_cut_anywhere(page: Page) -> None:
    """The page's SSE parser on one stream cut in two at every position (the network may
    split it anywhere): the same events each time, nothing after `done`."""
    page.goto("/ui")
    outcomes = page.evaluate(
        """async (text) => {
            const { SseParser } = await import("./ui/assets/api.js");
            const outcomes = new Set();
            for (let cut = 0; cut <= text.length; cut++) {
                const seen = [];
                const parser = new SseParser((name, data) => seen.push([name, data]));
                const ended = parser.feed(text.slice(0, cut)) || parser.feed(text.slice(cut));
                outcomes.add(JSON.stringify([seen, ended]));
            }
            return [...outcomes].map((o) => JSON.parse(o));
        }""",
        STREAM,
    )
    expected = [
        ["thread.message.delta", {"text": "two\nlines"}],
        ["thread.run.completed", {"status": "completed"}],
    ]
    assert outcomes == [[expected, True]]
