"""Request bodies as the openai SDK sends them (spec section 6).

Types are checked here; limits and domain rules in core. Unknown keys are ignored, and
null means "not given" everywhere, nested fields included (the SDK sends `None` as null).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from assistd.core.objects import SamplingParams
from assistd.core.service import AssistantPatch, AssistantSpec
from assistd.errors import InvalidRequest


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class AssistantBody(_Body):
    model: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p)

    def spec(self) -> AssistantSpec:
        if self.model is None:
            raise InvalidRequest("'model' is required.", "model")
        return AssistantSpec(
            model=self.model,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            metadata=self.metadata,
            sampling=self.sampling(),
        )

    def patch(self) -> AssistantPatch:
        return AssistantPatch(
            model=self.model,
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            metadata=self.metadata,
            sampling=self.sampling(),
        )
