"""Each surface serves its own OpenAPI document and an interactive docs page that works
offline: every asset the page loads comes from this server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import run_server


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server of its own (the documents do not depend on storage), and no key: the
    documents and pages are readable without one."""
    with (
        run_server(tmp_path_factory.mktemp("api-docs")) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        yield client


def document(client: httpx.Client, url: str) -> dict[str, Any]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    parsed: dict[str, Any] = answer.json()
    assert parsed["openapi"].startswith("3.")
    return parsed


def test_the_dashscope_document_lists_its_own_routes_only(client: httpx.Client) -> None:
    doc = document(client, "/api/v1/openapi.json")
    paths = doc["paths"]
    for path in (
        "/api/v1/assistants",
        "/api/v1/assistants/{assistant_id}",
        "/api/v1/threads",
        "/api/v1/threads/{thread_id}/messages",
        "/api/v1/threads/{thread_id}/runs",
        "/api/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        "/api/v1/threads/runs",
        "/api/v1/files",
    ):
        assert path in paths, path
    assert all(p.startswith("/api/v1/") for p in paths), sorted(paths)
    assert not any(p.endswith(("/openapi.json", "/docs")) for p in paths)


def test_the_admin_document_lists_its_own_routes_only(client: httpx.Client) -> None:
    paths = document(client, "/admin/v1/openapi.json")["paths"]
    for path in ("/admin/v1/workspaces", "/admin/v1/keys", "/admin/v1/keys/{key_id}/revoke"):
        assert path in paths, path
    assert all(p.startswith("/admin/v1/") for p in paths), sorted(paths)


def test_request_bodies_and_the_key_are_described(client: httpx.Client) -> None:
    doc = document(client, "/api/v1/openapi.json")
    create = doc["paths"]["/api/v1/assistants"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"model", "instructions", "tools"} <= set(schema["properties"])
    upload = doc["paths"]["/api/v1/files"]["post"]["requestBody"]["content"]
    assert "files" in upload["multipart/form-data"]["schema"]["properties"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearer": []}]
    # a bad parameter is a 400 in the DashScope envelope here, never FastAPI's 422
    assert "422" not in create["responses"]
    assert set(doc["components"]["schemas"]["Error"]["required"]) == {
        "request_id",
        "code",
        "message",
    }


def _references(page: str) -> list[str]:
    """Every URL the page loads or links: src and href attributes, and Swagger UI's
    `url:` for the document."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    found += re.findall(r"""\burl:\s*["']([^"']+)["']""", page)
    return found


@pytest.mark.parametrize("surface", ["/api/v1", "/admin/v1"])
def test_the_docs_page_loads_only_local_assets(client: httpx.Client, surface: str) -> None:
    page = client.get(f"{surface}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    references = _references(page.text)
    assert f"{surface}/openapi.json" in references
    assert any(r.endswith("swagger-ui-bundle.js") for r in references)
    assert "http://" not in page.text and "https://" not in page.text, page.text
    for url in references:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text


def test_the_landing_page_links_both_surfaces(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    references = _references(page.text)
    for url in ("/api/v1/docs", "/api/v1/openapi.json", "/admin/v1/docs", "/admin/v1/openapi.json"):
        assert url in references


def test_only_the_known_assets_are_served(client: httpx.Client) -> None:
    for name in ("LICENSE", "README.md", "..%2F..%2Fapp.py", "swagger-ui.js"):
        answer = client.get(f"/docs/assets/{name}")
        assert answer.status_code == 404, name
        assert answer.json()["code"] == "NotFound"
