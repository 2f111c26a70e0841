"""Who is calling: the DashScope surface's authentication dependency."""

from __future__ import annotations

from fastapi import Request

from assistd.api import audit
from assistd.api.common import bearer_token
from assistd.api.quota import admit
from assistd.core.objects import Principal
from assistd.core.run_service import RunService
from assistd.core.service import Service
from assistd.core.tenancy import Tenancy
from assistd.logs import bind

WORKSPACE_HEADER = "x-dashscope-workspace"


async def principal(request: Request) -> Principal:
    tenancy: Tenancy = request.app.state.tenancy
    who = await tenancy.authenticate(bearer_token(request), request.headers.get(WORKSPACE_HEADER))
    bind(workspace=who.workspace_id)  # for this request's log lines
    audit.note(request, who)
    await admit(request, who)
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
