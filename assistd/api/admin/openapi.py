"""The admin API's OpenAPI description: its router and the bodies it parses."""

from __future__ import annotations

from assistd.api.admin import audit, routes, usage, workspace_settings
from assistd.api.openapi import Surface

PREFIX = "/admin/v1"

SURFACE = Surface(
    prefix=PREFIX,
    title="assistd: admin API",
    description=(
        "Workspaces, API keys, usage and quotas. Every call needs an admin key: "
        "`Authorization: Bearer <admin key>`."
    ),
    routers=(routes.router, workspace_settings.router, usage.router, audit.router),
    bodies={
        ("POST", "/workspaces"): routes.WorkspaceBody,
        ("POST", "/keys"): routes.KeyBody,
        ("POST", "/workspaces/{workspace}/settings"): workspace_settings.SettingsBody,
        ("POST", "/keys/{key_id}/limits"): usage.LimitsBody,
    },
)
