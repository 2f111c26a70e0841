"""OpenAI's Files API (spec sections 5, 6.7): one file per multipart upload, in a part
named `file`, with a `purpose`. Lists default to 10,000 items, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from assistd.api.common import check_content_encoding, download_headers
from assistd.api.openai import render
from assistd.api.openai.deps import service, workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.wire import respond
from assistd.core.service import Service, Upload
from assistd.errors import InvalidRequest, UnsupportedMediaType, echo

router = APIRouter()
Ws = Depends(workspace_id)
Svc = Depends(service)
PURPOSES = ("assistants", "vision", "batch", "fine-tune", "user_data", "evals")
LIST_LIMIT = 10_000


def _purpose(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(
            "'purpose' is required: one of " + ", ".join(PURPOSES) + ".", "purpose"
        )
    if value not in PURPOSES:
        raise InvalidRequest(
            f"'purpose' must be one of {', '.join(PURPOSES)}, not '{echo(value)}'.", "purpose"
        )
    return value


@router.post("/files")
async def upload(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("Upload a file as multipart/form-data with a part named 'file'.")
    check_content_encoding(request)
    async with request.form(max_files=1, max_fields=16) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise InvalidRequest(
                "The upload needs a file in a part named 'file', sent with a filename.", "file"
            )
        purpose = _purpose(form.get("purpose"))
        # `expires_after` is accepted and not applied: files here do not expire.
        content = await part.read()
    stored = await svc.upload_file(ws, Upload(part.filename or "", content, purpose))
    return respond(request, render.file(stored))


@router.get("/files")
async def list_(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    page = page_request(request, default_limit=LIST_LIMIT, max_limit=LIST_LIMIT)
    purpose = request.query_params.get("purpose") or None
    found = await svc.list_files(ws, page, purpose)
    return respond(request, render.page(found, render.file))


@router.get("/files/{file_id}")
async def retrieve(request: Request, file_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    return respond(request, render.file(await svc.get_file(ws, file_id)))


@router.get("/files/{file_id}/content")
async def content(file_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    stored, data = await svc.file_content(ws, file_id)
    return Response(
        data, media_type="application/octet-stream", headers=download_headers(stored.filename)
    )


@router.delete("/files/{file_id}")
async def delete(request: Request, file_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    await svc.delete_file(ws, file_id)
    return respond(request, render.deleted(file_id, "file"))
