"""OpenAI's `file_search` tool: the model searches the run's vector stores.

The stores are the assistant's and the thread's `tool_resources.file_search.
vector_store_ids`, read when the call runs (a store added to the thread meanwhile is
searched; one deleted since is skipped). Files still being ingested are waited for, up to
`WAIT_S`, as OpenAI's runs waited for their stores. The search is KnowledgeService's
hybrid one, with the tool's `max_num_results` and `ranking_options.score_threshold`.
The model reads the results under citation markers (core/citations.py); the step records
them (`ToolCall.details`), with their text, so a run read later or taken over by another
worker shows the same results and its citations resolve against them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from assistd.core import citations
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import JsonDict, ToolCallsDetails
from assistd.errors import AssistdError
from assistd.store.base import Store, WorkspaceUnit
from assistd.tools.base import FunctionSpec, ToolContext, ToolResult

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20  # OpenAI's default for its current models
DEFAULT_RANKER = "default_2024_08_21"  # what `auto` resolves to, as OpenAI showed it
WAIT_S = 30.0  # longest a search waits for files still being ingested
POLL_S = 0.25
PARAMETERS: JsonDict = {
    "type": "object",
    "properties": {
        "queries": {
            "type": "array",
            "items": {"type": "string"},
            "description": "One or more search queries; several phrasings find more.",
        },
        "query": {"type": "string", "description": "A single search query."},
    },
}
DESCRIPTION = (
    "Searches the files the user gave (the assistant's and this conversation's knowledge) "
    "and returns the passages that match best. Use it for any question the files may answer."
)


class FileSearch:
    """A toolset of the one function `file_search`, given by the runtime (it needs the
    store and the knowledge service, which a tool made from settings alone has not)."""

    timeout_s = WAIT_S + 30.0  # the wait for ingestion, then the search itself

    def __init__(self, store: Store, knowledge: KnowledgeService) -> None:
        self.store = store
        self.knowledge = knowledge

    async def functions(self, context: ToolContext) -> list[FunctionSpec]:
        return [FunctionSpec(NAME, DESCRIPTION, PARAMETERS)]

    async def call(self, function: str, args: JsonDict, context: ToolContext) -> ToolResult:
        queries = _queries(args)
        if not queries:
            return ToolResult(output="Give the search a non-empty 'queries' list.")
        options = dict(context.config.get("file_search") or {})
        ranking = dict(options.get("ranking_options") or {})
        threshold = float(ranking.get("score_threshold") or 0.0)
        shown_ranking = {
            "ranker": DEFAULT_RANKER if ranking.get("ranker", "auto") == "auto"
            else ranking["ranker"],
            "score_threshold": threshold,
        }  # fmt: skip
        ws = context.workspace_id
        async with self.store.workspace(ws) as unit:
            store_ids = await _vector_store_ids(unit, context)
            turn = await _turn(unit, context)
        details: JsonDict = {"turn": turn, "ranking_options": shown_ranking, "results": []}
        if not store_ids:
            output = "There are no files to search in this conversation. Answer without them."
            return ToolResult(output=output, details=details)
        await self._wait_for_ingestion(ws, store_ids)
        try:
            hits = await self.knowledge.search(
                ws, store_ids, queries, score_threshold=threshold,
                max_results=int(options.get("max_num_results") or DEFAULT_MAX_RESULTS),
            )  # fmt: skip
        except AssistdError as exc:  # a store deleted this very moment, a bad query
            return ToolResult(output=f"The file search failed: {exc}", details=details)
        details["results"] = citations.result_records(hits)
        return ToolResult(
            output=citations.for_model(turn, queries, details["results"]), details=details
        )

    async def _wait_for_ingestion(self, ws: str, store_ids: Sequence[str]) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            async with self.store.workspace(ws) as unit:
                pending = 0
                for vs_id in store_ids:
                    counts, _ = await unit.knowledge.file_counts(vs_id)
                    pending += int(counts.get("in_progress", 0))
            if not pending:
                return
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        return None


def _queries(args: JsonDict) -> list[str]:
    given = args.get("queries")
    found = [given] if isinstance(given, str) else list(given or [])
    if isinstance(args.get("query"), str):
        found.append(args["query"])
    return list(dict.fromkeys(q.strip() for q in found if isinstance(q, str) and q.strip()))


async def _vector_store_ids(unit: WorkspaceUnit, context: ToolContext) -> list[str]:
    """The assistant's stores, then the thread's, each once, those that still exist."""
    run = await unit.runs.get(context.thread_id, context.run_id)
    thread = await unit.threads.get(context.thread_id)
    assistant = await unit.assistants.get(run.assistant_id) if run is not None else None
    wanted = [
        *(assistant.vector_store_ids if assistant else []),
        *(thread.vector_store_ids if thread else []),
    ]
    wanted = list(dict.fromkeys(wanted))
    existing = await unit.knowledge.existing_stores(wanted) if wanted else set()
    return [i for i in wanted if i in existing]


async def _turn(unit: WorkspaceUnit, context: ToolContext) -> int:
    """This call's number among the run's file searches, in the order the model made
    them: stable whichever parallel call ends first, and the same after a takeover."""
    turn = 0
    for step in await unit.steps.all_of(context.run_id):
        if not isinstance(step.step_details, ToolCallsDetails):
            continue
        for call in step.step_details.tool_calls:
            if call.id == context.call_id:
                return turn
            turn += call.type == NAME
    return turn
