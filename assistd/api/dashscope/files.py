"""DashScope's File API (spec section 11): the non-flattened shape, results under `data`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from assistd.api.common import check_content_encoding, download_headers, json_response
from assistd.api.dashscope import render
from assistd.api.dashscope.deps import service, workspace_id
from assistd.core.service import Service, Upload
from assistd.errors import InvalidRequest, UnsupportedMediaType, echo

router = APIRouter()
Ws = Depends(workspace_id)
Svc = Depends(service)


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an integer, not '{echo(text)}'.", name) from None


@router.post("/files")
async def upload(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("Upload files as multipart/form-data with a part named 'files'.")
    check_content_encoding(request)
    async with request.form(max_files=32, max_fields=64) as form:
        parts = [p for p in form.getlist("files") if isinstance(p, UploadFile)]
        if len(parts) < len(form.getlist("files")):
            raise InvalidRequest(
                "A part named 'files' has no filename: send each file with one "
                '(Content-Disposition: form-data; name="files"; filename="...").',
                "files",
            )
        if not parts:
            raise InvalidRequest("The upload has no file in a part named 'files'.", "files")
        descriptions = [d for d in form.getlist("descriptions") if isinstance(d, str)]
        purpose = form.get("purpose")
        uploads = [
            Upload(
                filename=part.filename or "",
                content=await part.read(),
                purpose=purpose if isinstance(purpose, str) and purpose else "assistants",
                description=descriptions[index] if index < len(descriptions) else None,
            )
            for index, part in enumerate(parts)
        ]
    stored = await svc.upload_files(ws, uploads)
    uploaded = [{"file_id": f.id, "name": f.filename} for f in stored]
    return json_response(request, {"data": {"uploaded_files": uploaded, "failed_uploads": []}})


@router.get("/files")
async def list_(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    page_no = _int_param(request, "page_no", 1)
    page_size = _int_param(request, "page_size", 10)
    files, total = await svc.list_files_by_number(ws, page_no, page_size)
    data = {"files": [render.file_info(f) for f in files], "total": total}
    return json_response(request, {"data": {**data, "page_no": page_no, "page_size": page_size}})


@router.get("/files/{file_id}")
async def retrieve(request: Request, file_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    return json_response(request, {"data": render.file_info(await svc.get_file(ws, file_id))})


@router.get("/files/{file_id}/content")
async def content(file_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    stored, data = await svc.file_content(ws, file_id)
    return Response(
        data, media_type="application/octet-stream", headers=download_headers(stored.filename)
    )


@router.delete("/files/{file_id}")
async def delete(request: Request, file_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    await svc.delete_file(ws, file_id)
    return json_response(request, {"data": {"file_id": file_id, "deleted": True}})
