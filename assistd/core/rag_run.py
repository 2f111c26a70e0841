"""The `rag` tool inside a run: search once, before the first model turn, and record it.

The search is a step of its own, a `tool_calls` step with one `rag` call. It opens with
no calls (a worker that stops during the search leaves a step the next one discards and
searches again) and is written completed, input and output, in one transaction; a leg
after function outputs, or a worker taking the run over, rebuilds the prompt from that
recorded output instead of searching again (the knowledge base may have changed since).
"""

from __future__ import annotations

import secrets

from assistd.core import rag
from assistd.core.context import message_text
from assistd.core.events import StepDelta, ToolCallFragment
from assistd.core.ids import now_ms
from assistd.core.journal import Journal
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import (
    JsonDict,
    PageRequest,
    Run,
    RunStep,
    SearchHit,
    ToolCall,
    ToolCallsDetails,
)
from assistd.core.tool_round import output_fragment
from assistd.core.turn import new_step
from assistd.errors import InvalidRequest, NotFound, echo
from assistd.models.base import ModelError
from assistd.queue.base import RunJob
from assistd.retrieval.embedder import EmbeddingFailed
from assistd.store.base import WorkspaceUnit

_PAGE = 20


class RagStage:
    def __init__(self, journal: Journal, knowledge: KnowledgeService | None) -> None:
        self.journal = journal
        self.knowledge = knowledge

    async def prepare(self, job: RunJob, run: Run, steps: list[RunStep]) -> rag.Documents | None:
        """The run's retrieved chunks and its instructions with them (None: no `rag` tool).
        Searches and records the step unless an earlier leg did; `steps` (the run's, as
        stored) gets the new step."""
        tools = rag.rag_tools(run.tools)
        if not tools:
            return None
        spec = rag.read_spec(tools[0])
        recorded = next((s for s in steps if rag.is_rag_step(s)), None)
        if recorded is not None:
            assert isinstance(recorded.step_details, ToolCallsDetails)
            items = rag.read_output(recorded.step_details.tool_calls[0].output)
        else:
            step, items = await self._search(job, run, spec)
            steps.append(step)
        instructions = rag.augment(run.instructions, spec, items)
        # Only chunks the model was shown can be cited.
        shown = items if rag.placed(run.instructions, spec) else []
        return rag.Documents(shown, instructions)

    async def _search(
        self, job: RunJob, run: Run, spec: rag.RagSpec
    ) -> tuple[RunStep, list[JsonDict]]:
        step = new_step(run, ToolCallsDetails())
        async with self.journal.entry(job.workspace_id) as entry:
            await entry.open_step(run, step)
            query = await latest_user_text(entry.unit, run)
        call = ToolCall(
            f"call_{secrets.token_hex(12)}", rag.KIND, rag.KIND, rag.call_input(query, spec)
        )
        start = ToolCallFragment(0, call.id, rag.KIND, rag.KIND, "start", call.arguments)
        await self.journal.publish(run.id, "thread.run.step.delta", StepDelta(step.id, [start]))
        items = rag.documents(await self._hits(job.workspace_id, spec, query))
        call.output = rag.call_output(items)
        step.step_details = ToolCallsDetails([call])
        step.status, step.completed_at = "completed", now_ms()
        async with self.journal.entry(job.workspace_id) as entry:
            entry.emit(
                run.id, "thread.run.step.delta", StepDelta(step.id, [output_fragment(0, call)])
            )
            await entry.save_step(run, step)
        return step, items

    async def _hits(self, ws: str, spec: rag.RagSpec, query: str) -> list[SearchHit]:
        """`per_base` chunks from each knowledge base, the best `total` of them all."""
        if not query.strip():
            return []  # nothing to search with (the latest message has no text)
        if self.knowledge is None:
            raise ModelError("rag_unavailable", "Knowledge bases are not available here.")
        hits: list[SearchHit] = []
        for pipeline_id in dict.fromkeys(spec.pipeline_ids):
            hits.extend(await self._search_one(ws, pipeline_id, query, spec.per_base))
        hits.sort(key=lambda hit: -hit.score)  # stable: ties keep the bases' order
        return hits[: spec.total]

    async def _search_one(
        self, ws: str, pipeline_id: str, query: str, count: int
    ) -> list[SearchHit]:
        assert self.knowledge is not None
        try:
            return await self.knowledge.search(ws, [pipeline_id], query, max_results=count)
        except NotFound:
            raise ModelError(
                "knowledge_base_not_found",
                f"The rag tool's knowledge base '{echo(pipeline_id)}' does not exist (any "
                "more) in this workspace.",
            ) from None
        except (EmbeddingFailed, InvalidRequest) as exc:
            raise ModelError(
                "rag_failed", f"Searching the knowledge base '{echo(pipeline_id)}' failed: {exc}"
            ) from None


async def latest_user_text(unit: WorkspaceUnit, run: Run) -> str:
    """The text of the thread's newest user message: what the search looks for."""
    cursor: str | None = None
    while True:
        page = await unit.messages.page(
            run.thread_id, PageRequest(limit=_PAGE, order="desc", after=cursor)
        )
        for message in page.items:
            if message.role == "user":
                return message_text(message)
        if not page.has_more:
            return ""
        cursor = page.last_id
