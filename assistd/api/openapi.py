"""Each surface's OpenAPI document and interactive docs, e.g. /api/v1/openapi.json and
/api/v1/docs, plus a /docs page that links them.

The docs page is Swagger UI served from files shipped inside the package
(assistd/web/swagger-ui, swagger-ui-dist), so it works on a machine without internet.
The documents describe routes only, the same for every deployment, so reading them needs
no key; trying a call from the page needs one (the page's Authorize button).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from assistd import __version__
from assistd.errors import NotFound

SWAGGER_UI_DIR = Path(__file__).resolve().parent.parent / "web" / "swagger-ui"
ASSETS_PATH = "/docs/assets"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
ERROR = {
    "type": "object",
    "required": ["request_id", "code", "message"],
    "properties": {
        "request_id": {"type": "string"},
        "code": {"type": "string", "examples": ["InvalidParameter"]},
        "message": {"type": "string"},
    },
}
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An assistd API key: `Authorization: Bearer <key>`.",
}

# Operation -> the body the route parses itself (routes read their bodies by hand, so
# FastAPI cannot see them): (method, path under the surface's prefix) -> a JSON body's
# model, or an OpenAPI requestBody object as it is.
BodyModels = Mapping[tuple[str, str], type[BaseModel] | dict[str, Any]]


@dataclass(frozen=True)
class Surface:
    prefix: str  # e.g. /api/v1
    title: str
    description: str
    routers: Sequence[APIRouter]
    bodies: BodyModels = field(default_factory=dict)
    tags: Sequence[str] = ()  # the order the docs page shows the resources in
    error_schema: Mapping[str, Any] = field(default_factory=lambda: ERROR)  # its envelope


def surface_document(surface: Surface) -> dict[str, Any]:
    """The OpenAPI document of one surface: its own routes only."""
    holder = APIRouter()
    for router in surface.routers:
        holder.include_router(router, prefix=surface.prefix)
    document = get_openapi(
        title=surface.title,
        version=__version__,
        description=surface.description,
        routes=holder.routes,
        tags=[{"name": tag} for tag in surface.tags] or None,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _describe_operations(document, schemas, surface)
    for (method, path), body in surface.bodies.items():
        operation = document["paths"][surface.prefix + path][method.lower()]
        if isinstance(body, dict):
            operation["requestBody"] = body
        else:
            operation["requestBody"] = _json_body(body, schemas)
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    document["security"] = [{"bearer": []}]
    return document


def _describe_operations(
    document: dict[str, Any], schemas: dict[str, Any], surface: Surface
) -> None:
    """Groups operations by resource, and states the error envelope every call may answer
    with instead of FastAPI's 422 (a bad parameter is a 400 in that envelope here)."""
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = dict(surface.error_schema)
    error = {
        "description": "An error: 4xx for the caller's mistakes",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            operation["tags"] = [_resource(path.removeprefix(surface.prefix))]
            operation["responses"].pop("422", None)
            operation["responses"]["default"] = error


def _resource(path: str) -> str:
    """/threads/{thread_id}/runs/{run_id}/steps -> runs; /assistants/{id}/files -> assistants."""
    names = [part for part in path.split("/") if part and not part.startswith("{")]
    return next((name for name in ("runs", "messages") if name in names), names[0])


def _json_body(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"content": {"application/json": {"schema": ref}}}


def install_api_docs(app: FastAPI, surfaces: Sequence[Surface]) -> None:
    """Adds {prefix}/openapi.json and {prefix}/docs for each surface, /docs and its assets."""
    for surface in surfaces:
        _install_surface(app, surface)

    @app.get("/docs", include_in_schema=False)
    async def landing(request: Request) -> HTMLResponse:
        return HTMLResponse(_landing_html(request.scope.get("root_path", ""), surfaces))

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in ASSETS:  # a fixed list: no path from the URL reaches the disk
            raise NotFound("No such documentation asset.")
        return FileResponse(
            SWAGGER_UI_DIR / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=86400"},
        )


def _install_surface(app: FastAPI, surface: Surface) -> None:
    cached: dict[str, Any] = {}

    @app.get(surface.prefix + "/openapi.json", include_in_schema=False)
    async def document() -> JSONResponse:
        if not cached:  # routes are fixed once the app is built
            cached.update(surface_document(surface))
        return JSONResponse(cached)

    @app.get(surface.prefix + "/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{surface.prefix}/openapi.json",
            title=surface.title,
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
            # the validator badge would send the document to an outside service
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )


def _landing_html(root: str, surfaces: Sequence[Surface]) -> str:
    items = "".join(
        f'<li><a href="{html.escape(root + s.prefix)}/docs">{html.escape(s.title)}</a> '
        f'(<a href="{html.escape(root + s.prefix)}/openapi.json">OpenAPI document</a>)</li>'
        for s in surfaces
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>assistd API docs</title>"
        f"</head><body><h1>assistd {__version__}: API docs</h1><ul>{items}</ul></body></html>"
    )
