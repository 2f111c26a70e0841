"""Who is calling: the DashScope surface's authentication dependency."""

from __future__ import annotations

from fastapi import Request

from assistd.core.objects import Principal
from assistd.core.run_service import RunService
from assistd.core.service import Service
from assistd.core.tenancy import Tenancy
from assistd.errors import Unauthorized
from assistd.logs import bind

WORKSPACE_HEADER = "x-dashscope-workspace"


def bearer_token(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>`; None when no key was sent."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, token = header.partition(" ")
    if header and scheme.lower() != "bearer":
        # Name a scheme word like "Basic", never what may be the key itself.
        named = f", not '{scheme} ...'" if scheme.isalpha() and len(scheme) <= 16 else ""
        raise Unauthorized(f"The Authorization header must be 'Bearer <API key>'{named}.")
    return token.strip() or None


async def principal(request: Request) -> Principal:
    tenancy: Tenancy = request.app.state.tenancy
    who = await tenancy.authenticate(bearer_token(request), request.headers.get(WORKSPACE_HEADER))
    bind(workspace=who.workspace_id)  # for this request's log lines
    return who


async def workspace_id(request: Request) -> str:
    return (await principal(request)).workspace_id


async def service(request: Request) -> Service:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hand-off to
    # another thread and back on every request
    svc: Service = request.app.state.service
    return svc


async def run_service(request: Request) -> RunService:
    return runs_of(request)  # async, as `service` is


def runs_of(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs
