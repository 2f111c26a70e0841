"""Signed file links (assistd.core.file_links): the download route a reply's image link
points at. It takes no API key, on any surface: the link's signature, over the workspace,
the file and the expiry time, is the permission. Raster images are shown inline; any
other file is served as a download, so nothing a link serves runs as a page here."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistd.core.file_links import LINK_PATH, FileLinks
from assistd.core.service import Service
from assistd.errors import Forbidden, InvalidRequest

router = APIRouter()

# Magic numbers of the image formats a browser may show inline.
_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@router.get(LINK_PATH + "/{file_id}", include_in_schema=False)
async def download(request: Request, file_id: str) -> Response:
    workspace, expires, signature = (_param(request, name) for name in ("w", "e", "s"))
    links: FileLinks = request.app.state.file_links
    refused = links.check(workspace, file_id, expires, signature)
    if refused is not None:
        raise Forbidden(f"This file link does not work: {refused}. Ask for a new one.")
    service: Service = request.app.state.service
    stored, content = await service.file_content(workspace, file_id)  # 404 once deleted
    media_type = image_type(content)
    disposition = "inline" if media_type else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; {filename_params(stored.filename)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=300",
    }
    return Response(content, media_type=media_type or "application/octet-stream", headers=headers)


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise InvalidRequest(f"The file link lacks its '{name}' parameter; use it as given.", name)
    return value


def image_type(content: bytes) -> str | None:
    """The media type of a raster image a browser shows, or None."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _IMAGES if content.startswith(magic)), None)


def filename_params(filename: str) -> str:
    """An ASCII fallback name plus the exact UTF-8 name (RFC 6266)."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
