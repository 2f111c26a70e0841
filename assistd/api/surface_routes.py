"""One surface's routes behind a check of its path prefix.

FastAPI tries an app's routes in order, each included router asking each of its routes in
turn, so a request to the surface included last paid for trying every route of the ones
before it (a `/v1` path took 67 µs to match against 25 µs for an `/api/v1` one). A group
answers "no match" at once for a path outside its prefix, and otherwise asks its routes.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

_CHOSEN = "assistd.surface_route"  # the route of the group that matched, in the scope


class PrefixGroup(BaseRoute):
    def __init__(self, prefix: str, routes: list[BaseRoute]) -> None:
        self.prefix = prefix
        self.routes = routes

    def _inside(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not self._inside(scope["path"]):
            return Match.NONE, {}
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return Match.FULL, {**child_scope, _CHOSEN: route}
            if match == Match.PARTIAL and partial is None:
                partial = route, child_scope
        if partial is not None:
            return Match.PARTIAL, {**partial[1], _CHOSEN: partial[0]}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_CHOSEN)
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except Exception:  # NoMatchFound: the next route may know it
                continue
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)
