"""DashScope's `rag` tool: prompt augmentation from knowledge bases (vector stores).

The tool is not a function the model calls. Before a run's first model turn the named
knowledge bases are searched with the user's latest message; the chunks found are
numbered `[1]`, `[2]`, ... and put in the instructions where the placeholder named by
`parameters.properties.query_word.value` stands (default `${documents}`). The search is
recorded as a completed `rag` tool call (input and output as JSON text), and the `[n]`
markers the model writes become `file_citation` annotations of its reply.

This module holds the pure parts (the tool's shape, the prompt, the step's text, the
citations); `rag_run.py` runs the search inside a run.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from assistd.core.citations import NUMBERED, Source, resolve
from assistd.core.objects import JsonDict, Message, RunStep, SearchHit, ToolCallsDetails
from assistd.errors import InvalidRequest, echo
from assistd.store.base import WorkspaceUnit

KIND = "rag"
PLACEHOLDER = "${documents}"
PER_BASE_DEFAULT = 5  # rerank_top_n
TOTAL_DEFAULT = 10  # multiknowledge_rerank_top_n
TOP_N_MAX = 50  # what one search returns at most
PIPELINES_MAX = 16


@dataclass(slots=True, frozen=True)
class RagSpec:
    """A `rag` tool entry, read (it was checked when stored)."""

    pipeline_ids: list[str]
    per_base: int
    total: int
    placeholder: str


@dataclass(slots=True)
class Documents:
    """What a run's retrieval found, as recorded in its step, and the instructions the
    model gets with them."""

    # The chunks the model was shown, to cite: {"index", "doc_id", "doc_name", "title",
    # "text", "score"} (none when the instructions lack the placeholder).
    items: list[JsonDict]
    instructions: str | None


# ---- the tool entry ---------------------------------------------------------------------


def rag_tools(tools: list[JsonDict]) -> list[JsonDict]:
    return [t for t in tools if t.get("type") == KIND]


def model_tools(tools: list[JsonDict]) -> list[JsonDict]:
    """The tools offered to the model: all but `rag`, which is no function."""
    return [t for t in tools if t.get("type") != KIND]


def read_spec(tool: Mapping[str, Any]) -> RagSpec:
    options = tool.get("prompt_ra") or {}
    ids = options.get("pipeline_id")
    return RagSpec(
        pipeline_ids=[ids] if isinstance(ids, str) else list(ids or []),
        per_base=options.get("rerank_top_n") or PER_BASE_DEFAULT,
        total=options.get("multiknowledge_rerank_top_n") or TOTAL_DEFAULT,
        placeholder=_placeholder(options.get("parameters")) or PLACEHOLDER,
    )


def _placeholder(parameters: Any) -> str | None:
    try:
        value = parameters["properties"]["query_word"]["value"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def check_shape(tool: Mapping[str, Any], where: str) -> None:
    """`prompt_ra` as the vendor's guide has it; every failure names its field."""
    options = tool.get("prompt_ra")
    at = f"{where}.prompt_ra"
    if not isinstance(options, Mapping):
        raise InvalidRequest(f"'{at}' must be an object with a 'pipeline_id'.", at)
    ids = options.get("pipeline_id")
    ids = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise InvalidRequest(
            f"'{at}.pipeline_id' must be a knowledge base id or a non-empty array of them.", at
        )
    if len(ids) > PIPELINES_MAX:
        raise InvalidRequest(
            f"'{at}.pipeline_id' names {len(ids)} knowledge bases; at most {PIPELINES_MAX}.", at
        )
    for name in ("rerank_top_n", "multiknowledge_rerank_top_n"):
        count = options.get(name)
        if count is not None and (type(count) is not int or not 1 <= count <= TOP_N_MAX):
            raise InvalidRequest(f"'{at}.{name}' must be an integer from 1 to {TOP_N_MAX}.", at)
    parameters = options.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidRequest(f"'{at}.parameters' must be an object.", at)
    if parameters is not None and "properties" in parameters and _placeholder(parameters) is None:
        raise InvalidRequest(
            f"'{at}.parameters.properties.query_word.value' must be the placeholder "
            f'string of the instructions (as "{PLACEHOLDER}").',
            at,
        )


async def check_tools(unit: WorkspaceUnit, tools: list[JsonDict], field: str = "tools") -> None:
    """The `rag` entries of checked `tools`: their shape, one at most, and knowledge bases
    that exist in this workspace (another workspace's do not exist here)."""
    found = [(i, t) for i, t in enumerate(tools) if t.get("type") == KIND]
    if len(found) > 1:
        raise InvalidRequest(f"'{field}' has {len(found)} rag tools; at most one.", field)
    for index, tool in found:
        where = f"{field}[{index}]"
        check_shape(tool, where)
        for pipeline_id in dict.fromkeys(read_spec(tool).pipeline_ids):
            if await unit.knowledge.get_store(pipeline_id) is None:
                raise InvalidRequest(
                    f"'{where}.prompt_ra.pipeline_id' names '{echo(pipeline_id)}', which is "
                    "no knowledge base (vector store) of this workspace.",
                    f"{where}.prompt_ra.pipeline_id",
                )


# ---- the step and the prompt ------------------------------------------------------------


def is_rag_step(step: RunStep) -> bool:
    details = step.step_details
    return (
        isinstance(details, ToolCallsDetails)
        and bool(details.tool_calls)
        and all(c.type == KIND for c in details.tool_calls)
    )


def call_input(query: str, spec: RagSpec) -> str:
    return json.dumps({"query_word": query, "pipeline_id": spec.pipeline_ids}, ensure_ascii=False)


def documents(hits: list[SearchHit]) -> list[JsonDict]:
    return [
        {
            "index": n, "doc_id": hit.file_id, "doc_name": hit.filename,
            "title": PurePath(hit.filename).stem, "text": hit.text, "score": round(hit.score, 4),
        }
        for n, hit in enumerate(hits, start=1)
    ]  # fmt: skip


def call_output(items: list[JsonDict]) -> str:
    return json.dumps(items, ensure_ascii=False)


def read_output(output: str | None) -> list[JsonDict]:
    try:
        items = json.loads(output or "[]")
    except json.JSONDecodeError:
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def render(items: list[JsonDict]) -> str:
    """The chunks as the model reads them: `[n] (doc_name) text`, one a line."""
    return "\n".join(f"[{i['index']}] ({i['doc_name']}) {i['text']}" for i in items)


def placed(instructions: str | None, spec: RagSpec) -> bool:
    """Whether the instructions hold the tool's placeholder."""
    return bool(instructions) and spec.placeholder in str(instructions)


def augment(instructions: str | None, spec: RagSpec, items: list[JsonDict]) -> str | None:
    """The instructions with the chunks at the placeholder. Without the placeholder
    nothing is added, as DashScope does: the search is still recorded in the step."""
    if not instructions or not placed(instructions, spec):
        return instructions
    return instructions.replace(spec.placeholder, render(items))


# ---- citations --------------------------------------------------------------------------


def citations(text: str, items: list[JsonDict]) -> list[JsonDict]:
    """A `file_citation` annotation (with the chunk as its quote) for each `[n]` the
    reply wrote whose n names a retrieved chunk; other brackets are left alone, nothing
    is invented."""
    sources: dict[Hashable, Source] = {
        i["index"]: Source(str(i["doc_id"]), quote=str(i["text"])) for i in items
    }
    return resolve(text, NUMBERED, sources)


def cite(message: Message, items: list[JsonDict]) -> None:
    """Adds the reply's citations to the annotations its text parts already have."""
    if not items:
        return
    for part in message.content:
        if part.get("type") != "text":
            continue
        text = part["text"]
        annotations = [*text.get("annotations", []), *citations(text["value"], items)]
        text["annotations"] = sorted(annotations, key=lambda a: a.get("start_index", 0))
