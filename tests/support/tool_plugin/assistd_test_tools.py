"""A third-party tool package, as the tests install it: on PYTHONPATH with its dist-info,
so assistd finds its tools through the `assistd.tools` entry points like any plugin.

`slow_fetch` GETs a URL (the tests' slow HTTP server) under the server's time limit per
call; `patient_fetch` does the same but declares a longer limit of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from assistd.tools.base import JsonDict, ToolContext, ToolResult


class SlowFetch:
    name = "slow_fetch"
    description = "Fetches a URL and returns its body."
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {"url": {"type": "string"}},
        "required": ["url"],
    }

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=600)

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        response = await self.client.get(str(args["url"]))
        return ToolResult(output=response.text)

    async def close(self) -> None:
        await self.client.aclose()


class PatientFetch(SlowFetch):
    name = "patient_fetch"
    timeout_s = 30.0


def slow_fetch(settings: Any) -> SlowFetch:
    return SlowFetch()


def patient_fetch(settings: Any) -> PatientFetch:
    return PatientFetch()
