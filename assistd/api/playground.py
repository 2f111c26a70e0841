"""The playground: a page at /ui to try assistants in a browser.

Static files shipped inside the package (assistd/web/playground): plain JavaScript
modules, no build step, nothing fetched from elsewhere. The page holds no data and needs
no key to load; it talks to the public OpenAI surface (/v1) with a key the user types in,
which it keeps in the tab's sessionStorage and sends as a Bearer header, never as a cookie.

Its URLs are relative (the page at /ui loads `ui/assets/...` and calls `v1/...`), so it
works unchanged behind a proxy that mounts assistd under a path.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response

from assistd.errors import NotFound

PLAYGROUND_DIR = Path(__file__).resolve().parent.parent / "web" / "playground"
PATH = "/ui"
ASSETS_PATH = PATH + "/assets"
JS = "text/javascript"
ASSETS = {
    "app.css": "text/css",
    "app.js": JS,
    "api.js": JS,
    "dom.js": JS,
    "assistants.js": JS,
    "chat.js": JS,
    "steps.js": JS,
    "files.js": JS,
}
# Only this origin's scripts, styles, API and images (blob: for images fetched with the
# key); no inline script or style, no framing, no form posts.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated, so an upgraded server serves its own page
}


def install_playground(app: FastAPI) -> None:
    """Adds /ui (the page), /ui/ (a redirect to it) and /ui/assets/{name}."""

    @app.get(PATH, include_in_schema=False)
    async def page() -> Response:
        return FileResponse(PLAYGROUND_DIR / "index.html", media_type="text/html", headers=HEADERS)

    @app.get(PATH + "/", include_in_schema=False)
    async def slash() -> Response:
        return RedirectResponse("../ui", status_code=308)  # relative: works under a proxy path

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in ASSETS:  # a fixed list: no path from the URL reaches the disk
            raise NotFound("No such playground asset.")
        return FileResponse(PLAYGROUND_DIR / name, media_type=ASSETS[name], headers=HEADERS)
