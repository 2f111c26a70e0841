"""Model routing: which backend serves a model name, with one backend per route."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from assistd.models.base import ModelBackend
from assistd.models.local import LocalBackend, bundled_model_path, missing_parts
from assistd.models.prompted import PromptedToolCalls
from assistd.settings import ModelRoute, Settings

log = logging.getLogger("assistd.models")
LOCAL_ROUTE = "local"


@dataclass(slots=True, frozen=True)
class ResolvedModel:
    backend: ModelBackend
    upstream_model: str
    context_window: int
    max_output_tokens: int | None


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.routes = dict(settings.models)
        if settings.openai_base_url and "*" not in self.routes:
            self.routes["*"] = ModelRoute(
                backend="openai_compat",
                base_url=settings.openai_base_url,
                api_key=settings.openai_api_key,
            )
        self._backends: dict[str, ModelBackend] = {}

    def preload(self) -> None:
        """Builds the configured routes' backends now, at start: importing the openai client
        inside the first run would stall every request for a second or more."""
        started = time.monotonic()
        for key, route in self.routes.items():
            if key not in self._backends:
                self._backends[key] = self._build(route)
        if self.routes:
            seconds = time.monotonic() - started
            log.info("%d model routes ready in %.2f s", len(self.routes), seconds)

    async def close(self) -> None:
        """Releases the backends' connections (an HTTP client's pool is a session that
        must be closed, not left to the garbage collector)."""
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            close = getattr(backend, "close", None)
            if close is not None:
                await close()

    def local_model_missing(self) -> list[str]:
        """What the local model lacks, when some model name goes to it (see
        `missing_parts`); empty when nothing does, or when it lacks nothing."""
        local = "*" not in self.routes or any(r.backend == "local" for r in self.routes.values())
        if not local:
            return []
        return missing_parts(self.settings.local_model_path or bundled_model_path())

    def route_name(self, model: str) -> str:
        """The route that serves `model`: its own, `*`, or `local`."""
        return model if model in self.routes else ("*" if "*" in self.routes else LOCAL_ROUTE)

    def resolve(self, model: str) -> ResolvedModel:
        key = self.route_name(model)
        route = self.routes.get(key) or ModelRoute(
            backend="local",
            context_window=self.settings.local_context,
            tool_calls="prompted",
            max_output_tokens=256,
        )
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = self._build(route)
        return ResolvedModel(
            backend, route.upstream_model or model, route.context_window, route.max_output_tokens
        )

    def _build(self, route: ModelRoute) -> ModelBackend:
        backend: ModelBackend
        if route.backend == "local":
            s = self.settings
            path = s.local_model_path or bundled_model_path()
            backend = LocalBackend(path, s.local_context, s.local_threads, s.local_parallel)
            return PromptedToolCalls(backend)
        from assistd.models.openai_compat import OpenAICompatBackend

        key = route.api_key or (os.environ.get(route.api_key_env, "") if route.api_key_env else "")
        backend = OpenAICompatBackend(
            base_url=route.endpoint,
            api_key=key,
            timeout_s=route.timeout_s,
            max_retries=route.max_retries,
        )
        return PromptedToolCalls(backend) if route.tool_calls == "prompted" else backend
