"""The playground at /ui in a real browser (Debian's chromium, headless) against the real
server and the scripted model: the key, assistants, a streamed chat with a code
interpreter call and its image, files and vector stores. Screenshots are kept in
test-artifacts/ui/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.conftest import make_workspace
from tests.support.fake_model import FakeModel, Reply, ToolCalls
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
        for name in ("app.js", "api.js", "chat.js", "steps.js", "app.css"):
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
    assert reply.first.inner_text().startswith(ANSWER)

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
