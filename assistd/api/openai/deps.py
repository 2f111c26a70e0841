"""Who is calling: the OpenAI surface's authentication dependency.

The same API keys and workspaces as the DashScope surface. A key acts in its own
workspace; `OpenAI-Project` may name another one the key may act in (as
`X-DashScope-WorkSpace` does there). OpenAI's own project ids (`proj_...`), which an
application configured for OpenAI's service may still send, are ignored, so pointing
such an application at assistd needs no other change.
"""

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

PROJECT_HEADER = "openai-project"
OPENAI_PROJECT_PREFIX = "proj_"


def workspace_named(request: Request) -> str | None:
    project = request.headers.get(PROJECT_HEADER, "").strip()
    if not project or project.startswith(OPENAI_PROJECT_PREFIX):
        return None
    return project


async def principal(request: Request) -> Principal:
    tenancy: Tenancy = request.app.state.tenancy
    who = await tenancy.authenticate(bearer_token(request), workspace_named(request))
    bind(workspace=who.workspace_id)  # for this request's log lines
    audit.note(request, who)
    await admit(request, who)
    return who


async def workspace_id(request: Request) -> str:
    return (await principal(request)).workspace_id


async def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


async def run_service(request: Request) -> RunService:
    runs: RunService = request.app.state.runs
    return runs
