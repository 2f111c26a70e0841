"""Use-cases the routers call. One transaction per call: a failed call writes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from assistd.core import rag
from assistd.core import validation as v
from assistd.core.ids import new_id, now_ms
from assistd.core.objects import (
    Assistant,
    AssistantFile,
    Attachment,
    JsonDict,
    Message,
    MessageFile,
    Metadata,
    Page,
    PageRequest,
    Run,
    SamplingParams,
    StoredFile,
    Thread,
)
from assistd.core.search_stores import SearchStores, StoresSpec, attached_for_search
from assistd.core.ttl_rules import check_thread_metadata
from assistd.errors import ActiveRun, InvalidRequest, NotFound, echo
from assistd.settings import Settings
from assistd.store.base import Store, WorkspaceUnit
from assistd.tools.registry import known_types


@dataclass(slots=True)
class AssistantSpec:
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: Any = None
    file_ids: Any = None
    metadata: Any = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    response_format: Any = None  # None or "auto": the model's default
    vector_store_ids: Any = None
    vector_stores: Any = None  # stores to make, as `tool_resources.file_search.vector_stores`


@dataclass(slots=True)
class AssistantPatch:
    """Fields left None stay as they are."""

    model: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: Any = None
    file_ids: Any = None
    metadata: Any = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    response_format: Any = None  # "auto" resets it
    vector_store_ids: Any = None


@dataclass(slots=True)
class Upload:
    filename: str
    content: bytes
    purpose: str = "assistants"
    description: str | None = None


@dataclass(slots=True)
class MessageSpec:
    content: Any
    role: Any = "user"
    file_ids: Any = None
    metadata: Any = None
    # Given instead of file_ids: the files and the tools each is for.
    attachments: list[Attachment] | None = None
    images: bool = False  # whether content may hold image parts (OpenAI's surface)


def run_vector_store_ids(value: Any, field_name: str) -> None:
    """A run's own `tool_resources.file_search` (`POST /threads/runs`'s top level) is not
    kept: its stores are set on the thread or the assistant."""
    if value:
        raise InvalidRequest(
            f"'{field_name}' cannot be set for one run here: give the vector stores to the "
            "thread (thread.tool_resources) or the assistant.",
            field_name,
        )


def busy_thread(thread_id: str, run: Run, adding: str = "run") -> ActiveRun:
    return ActiveRun(thread_id, run.id, run.status, adding)


def files_field(spec: MessageSpec) -> str:
    return "file_ids" if spec.attachments is None else "attachments"


async def _require_message_files(unit: WorkspaceUnit, message: Message, files_at: str) -> None:
    """The message's files exist: those attached (`files_at` names the field, as
    `messages[0].attachments`) and those its image parts show."""
    await _require_files(unit, message.file_ids, files_at)
    content_at = files_at.rsplit(".", 1)[0] + ".content" if "." in files_at else "content"
    await _require_files(unit, v.content_file_ids(message.content), content_at)


async def _require_files(unit: WorkspaceUnit, file_ids: list[str], field_name: str) -> None:
    if not file_ids:
        return
    missing = [f for f in file_ids if f not in await unit.files.existing_ids(file_ids)]
    if missing:
        shown = ", ".join(echo(f) for f in missing)
        raise InvalidRequest(f"'{field_name}' names files that do not exist: {shown}.", field_name)


class Service:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.search_stores: SearchStores | None = None  # set by the runtime, with knowledge

    async def vector_store_ids(
        self, ws: str, spec: StoresSpec, where: str = "", for_thread: bool = False
    ) -> list[str] | None:
        """file_search's stores for an assistant or thread (see core/search_stores.py)."""
        if self.search_stores is None:  # a service without knowledge (some tools)
            if spec.ids or spec.inline or spec.attached:
                raise InvalidRequest("This server has no vector stores.", "tool_resources")
            return None
        return await self.search_stores.resolve(ws, spec, where, for_thread)

    # ---- assistants -------------------------------------------------------------------

    def _check_assistant_text(
        self, name: str | None, description: str | None, instructions: str | None
    ) -> None:
        v.check_length(name, "name", v.NAME_MAX)
        v.check_length(description, "description", v.DESCRIPTION_MAX)
        v.check_length(instructions, "instructions", v.INSTRUCTIONS_MAX)

    def _check_model(self, model: str) -> str:
        if not model.strip():
            raise InvalidRequest("'model' must name a model.", "model")
        return v.check_length(model, "model", v.MODEL_MAX) or model

    async def create_assistant(self, ws: str, spec: AssistantSpec) -> Assistant:
        self._check_assistant_text(spec.name, spec.description, spec.instructions)
        assistant = Assistant(
            id=new_id("asst"),
            created_at=now_ms(),
            model=self._check_model(spec.model),
            name=spec.name,
            description=spec.description,
            instructions=spec.instructions,
            tools=[],  # checked below, against the workspace's plugins
            file_ids=v.check_file_ids(spec.file_ids, "file_ids", v.ASSISTANT_FILES_MAX),
            metadata=v.check_metadata(spec.metadata),
            sampling=v.check_sampling(spec.sampling),
            response_format=v.check_response_format(spec.response_format),
        )
        stores = StoresSpec(spec.vector_store_ids, spec.vector_stores)
        assistant.vector_store_ids = await self.vector_store_ids(ws, stores) or []
        async with self.store.workspace(ws, write=True) as unit:
            assistant.tools = await self.checked_tools(unit, spec.tools)
            await _require_files(unit, assistant.file_ids, "file_ids")
            await unit.assistants.insert(assistant)
        return assistant

    async def checked_tools(
        self, unit: WorkspaceUnit, tools: Any, field_name: str = "tools"
    ) -> list[JsonDict]:
        """`tools`, each naming a built-in, a plugin the configuration declares, or one
        registered in the workspace (another workspace's plugins do not exist here)."""
        declared = set(self.settings.plugins)
        wanted = sorted(v.tool_types(tools) - known_types(declared))
        registered = await unit.plugins.existing_ids(wanted) if wanted else set()
        checked = v.check_tools(tools, declared | registered, field_name)
        await rag.check_tools(unit, checked, field_name)  # its knowledge bases exist here
        return checked

    async def _assistant(self, unit: WorkspaceUnit, assistant_id: str) -> Assistant:
        assistant = await unit.assistants.get(assistant_id)
        if assistant is None:
            raise NotFound.of("assistant", assistant_id)
        return assistant

    async def get_assistant(self, ws: str, assistant_id: str) -> Assistant:
        async with self.store.workspace(ws) as unit:
            return await self._assistant(unit, assistant_id)

    async def list_assistants(self, ws: str, page: PageRequest) -> Page[Assistant]:
        async with self.store.workspace(ws) as unit:
            return await unit.assistants.page(page)

    async def update_assistant(
        self, ws: str, assistant_id: str, patch: AssistantPatch
    ) -> Assistant:
        self._check_assistant_text(patch.name, patch.description, patch.instructions)
        changes: dict[str, Any] = {
            k: getattr(patch, k)
            for k in ("name", "description", "instructions")
            if getattr(patch, k) is not None
        }
        if patch.model is not None:
            changes["model"] = self._check_model(patch.model)
        if patch.file_ids is not None:
            changes["file_ids"] = v.check_file_ids(
                patch.file_ids, "file_ids", v.ASSISTANT_FILES_MAX
            )
        if patch.metadata is not None:
            changes["metadata"] = v.check_metadata(patch.metadata)
        if patch.response_format is not None:
            changes["response_format"] = v.check_response_format(patch.response_format)
        stores = await self.vector_store_ids(ws, StoresSpec(patch.vector_store_ids))
        if stores is not None:
            changes["vector_store_ids"] = stores
        async with self.store.workspace(ws, write=True) as unit:
            current = await self._assistant(unit, assistant_id)
            if patch.tools is not None:
                changes["tools"] = await self.checked_tools(unit, patch.tools)
            await _require_files(unit, changes.get("file_ids", []), "file_ids")
            sampling = _merge_sampling(current.sampling, v.check_sampling(patch.sampling))
            await unit.assistants.replace(replace(current, **changes, sampling=sampling))
            # Read back: the store keeps files in the order they were attached.
            return await self._assistant(unit, assistant_id)

    async def delete_assistant(self, ws: str, assistant_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            if not await unit.assistants.delete(assistant_id):
                raise NotFound.of("assistant", assistant_id)

    async def attach_assistant_file(
        self, ws: str, assistant_id: str, file_id: str
    ) -> AssistantFile:
        v.check_id(file_id, "file_id")
        async with self.store.workspace(ws, write=True) as unit:
            await self._assistant(unit, assistant_id)
            await _require_files(unit, [file_id], "file_id")
            existing = await unit.assistants.get_file(assistant_id, file_id)
            if existing is not None:
                return existing
            if await unit.assistants.count_files(assistant_id) >= v.ASSISTANT_FILES_MAX:
                raise InvalidRequest(
                    f"An assistant can have at most {v.ASSISTANT_FILES_MAX} files.", "file_id"
                )
            link = AssistantFile(id=file_id, assistant_id=assistant_id, created_at=now_ms())
            await unit.assistants.add_file(assistant_id, file_id, link.created_at)
        return link

    async def get_assistant_file(self, ws: str, assistant_id: str, file_id: str) -> AssistantFile:
        async with self.store.workspace(ws) as unit:
            await self._assistant(unit, assistant_id)
            link = await unit.assistants.get_file(assistant_id, file_id)
        if link is None:
            raise NotFound(f"Assistant '{echo(assistant_id)}' has no file '{echo(file_id)}'.")
        return link

    async def list_assistant_files(
        self, ws: str, assistant_id: str, page: PageRequest
    ) -> Page[AssistantFile]:
        async with self.store.workspace(ws) as unit:
            await self._assistant(unit, assistant_id)
            return await unit.assistants.list_files(assistant_id, page)

    async def detach_assistant_file(self, ws: str, assistant_id: str, file_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            await self._assistant(unit, assistant_id)
            if not await unit.assistants.remove_file(assistant_id, file_id):
                raise NotFound(f"Assistant '{echo(assistant_id)}' has no file '{echo(file_id)}'.")

    # ---- threads ----------------------------------------------------------------------

    async def create_thread(
        self,
        ws: str,
        messages: list[MessageSpec],
        metadata: Any,
        file_ids: Any = None,
        stores: StoresSpec | None = None,
    ) -> Thread:
        thread, built = self.new_thread(messages, metadata, file_ids=file_ids)
        await self.thread_stores(ws, thread, messages, stores)
        async with self.store.workspace(ws, write=True) as unit:
            await self.insert_thread(unit, thread, built, [files_field(m) for m in messages])
        return thread

    async def thread_stores(
        self, ws: str, thread: Thread, messages: list[MessageSpec], stores: StoresSpec | None,
        where: str = "",
    ) -> None:  # fmt: skip
        """Gives a new thread its file_search stores: those named or made, with the
        files its messages attach for file_search."""
        spec = stores or StoresSpec()
        spec.attached = [f for m in messages for f in attached_for_search(m.attachments)]
        thread.vector_store_ids = await self.vector_store_ids(ws, spec, where, True) or []

    def new_thread(
        self, messages: list[MessageSpec], metadata: Any, where: str = "", file_ids: Any = None
    ) -> tuple[Thread, list[Message]]:
        """A checked thread and its messages, not yet stored. `where` prefixes the
        field names in errors (`thread.` inside `POST /threads/runs`); `file_ids` are
        the code interpreter's files for the thread's runs."""
        if len(messages) > v.THREAD_MESSAGES_MAX:
            raise InvalidRequest(
                f"'{where}messages' has {len(messages)} items; at most {v.THREAD_MESSAGES_MAX}.",
                f"{where}messages",
            )
        metadata = v.check_metadata(metadata, f"{where}metadata")
        check_thread_metadata(metadata, f"{where}metadata")
        files_field = f"{where}tool_resources.code_interpreter.file_ids"
        thread = Thread(
            id=new_id("thread"),
            created_at=now_ms(),
            metadata=metadata,
            file_ids=v.check_file_ids(file_ids, files_field, v.ASSISTANT_FILES_MAX),
        )
        built = [
            _build_message(thread.id, spec, f"{where}messages[{i}]", thread.created_at)
            for i, spec in enumerate(messages)
        ]
        return thread, built

    async def insert_thread(
        self,
        unit: WorkspaceUnit,
        thread: Thread,
        messages: list[Message],
        files_fields: list[str] | None = None,
    ) -> None:
        """`files_fields` names, for errors, where each message named its files."""
        await _require_files(unit, thread.file_ids, "tool_resources.code_interpreter.file_ids")
        for i, message in enumerate(messages):
            named = files_fields[i] if files_fields else "file_ids"
            await _require_message_files(unit, message, f"messages[{i}].{named}")
        await unit.threads.insert(thread)
        await unit.messages.insert_many(messages)

    async def _thread(self, unit: WorkspaceUnit, thread_id: str) -> Thread:
        thread = await unit.threads.get(thread_id)
        if thread is None:
            raise NotFound.of("thread", thread_id)
        return thread

    async def get_thread(self, ws: str, thread_id: str) -> Thread:
        async with self.store.workspace(ws) as unit:
            return await self._thread(unit, thread_id)

    async def update_thread(
        self,
        ws: str,
        thread_id: str,
        metadata: Metadata | None,
        file_ids: Any = None,
        vector_store_ids: Any = None,
    ) -> Thread:
        """Changes what is given: `metadata`, the code interpreter's `file_ids`, the
        file_search stores."""
        stores = await self.vector_store_ids(ws, StoresSpec(vector_store_ids), for_thread=True)
        checked = v.check_metadata(metadata) if metadata is not None else None
        if checked is not None:
            check_thread_metadata(checked)
        files_field = "tool_resources.code_interpreter.file_ids"
        files = v.check_file_ids(file_ids, files_field, v.ASSISTANT_FILES_MAX)
        async with self.store.workspace(ws, write=True) as unit:
            thread = await self._thread(unit, thread_id)
            if checked is not None:
                thread.metadata = checked
            if file_ids is not None:
                await _require_files(unit, files, files_field)
                thread.file_ids = files
            if stores is not None:
                thread.vector_store_ids = stores
            if checked is not None or file_ids is not None or stores is not None:
                await unit.threads.replace(thread)
        return thread

    # ---- messages ---------------------------------------------------------------------

    async def create_message(self, ws: str, thread_id: str, spec: MessageSpec) -> Message:
        message = _build_message(thread_id, spec, None, now_ms())
        async with self.store.workspace(ws, write=True) as unit:
            await self._thread(unit, thread_id)
            active = await unit.runs.active(thread_id)
            if active is not None:
                raise busy_thread(thread_id, active, "message")
            await _require_message_files(unit, message, files_field(spec))
            await unit.messages.insert_many([message])
        await self.add_to_thread_store(ws, thread_id, [spec])
        return message

    async def add_to_thread_store(self, ws: str, thread_id: str, specs: list[MessageSpec]) -> None:
        """New messages' file_search attachments join the thread's store (made if none)."""
        attached = [f for spec in specs for f in attached_for_search(spec.attachments)]
        if not attached or self.search_stores is None:
            return
        thread = await self.get_thread(ws, thread_id)
        ids = await self.search_stores.attach(ws, thread.vector_store_ids, attached)
        if ids != thread.vector_store_ids:
            async with self.store.workspace(ws, write=True) as unit:
                current = await self._thread(unit, thread_id)
                current.vector_store_ids = ids
                await unit.threads.replace(current)

    async def _message(self, unit: WorkspaceUnit, thread_id: str, message_id: str) -> Message:
        message = await unit.messages.get(thread_id, message_id)
        if message is None:
            await self._thread(unit, thread_id)
            raise NotFound.of("message", message_id)
        return message

    async def get_message(self, ws: str, thread_id: str, message_id: str) -> Message:
        async with self.store.workspace(ws) as unit:
            return await self._message(unit, thread_id, message_id)

    async def list_messages(
        self, ws: str, thread_id: str, page: PageRequest, run_id: str | None = None
    ) -> Page[Message]:
        async with self.store.workspace(ws) as unit:
            found = await unit.messages.page(thread_id, page, run_id)
            if not found.items:
                await self._thread(unit, thread_id)  # an empty page or a missing thread?
            return found

    async def thread_files(
        self, ws: str, thread_id: str, page: PageRequest
    ) -> tuple[list[str], Page[Message]]:
        """The thread's own files and a page of its messages, in one transaction."""
        async with self.store.workspace(ws) as unit:
            thread = await self._thread(unit, thread_id)
            return thread.file_ids, await unit.messages.page(thread_id, page)

    async def update_message(
        self, ws: str, thread_id: str, message_id: str, metadata: Metadata | None
    ) -> Message:
        checked = v.check_metadata(metadata) if metadata is not None else None
        async with self.store.workspace(ws, write=True) as unit:
            message = await self._message(unit, thread_id, message_id)
            if checked is not None:
                message.metadata = checked
                await unit.messages.set_metadata(message_id, checked)
        return message

    async def delete_message(self, ws: str, thread_id: str, message_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            if not await unit.messages.delete(message_id, thread_id):
                await self._thread(unit, thread_id)
                raise NotFound.of("message", message_id)

    async def list_message_files(
        self, ws: str, thread_id: str, message_id: str, page: PageRequest
    ) -> Page[MessageFile]:
        message = await self.get_message(ws, thread_id, message_id)
        return _page_of_ids(_message_files(message), page)

    async def get_message_file(
        self, ws: str, thread_id: str, message_id: str, file_id: str
    ) -> MessageFile:
        message = await self.get_message(ws, thread_id, message_id)
        for link in _message_files(message):
            if link.id == file_id:
                return link
        raise NotFound(f"Message '{echo(message_id)}' has no file '{echo(file_id)}'.")

    # ---- files ------------------------------------------------------------------------

    def _new_file(self, upload: Upload) -> StoredFile:
        size = len(upload.content)
        if size > self.settings.max_file_bytes:
            raise v.file_too_large(upload.filename, size, self.settings.max_file_bytes)
        name = upload.filename
        if not name:
            raise InvalidRequest("An uploaded file has an empty filename.", "files")
        if len(name) > v.FILENAME_MAX or "\x00" in name:
            raise InvalidRequest(
                f"Each uploaded file needs a file name of 1-{v.FILENAME_MAX} characters.", "files"
            )
        v.check_length(upload.purpose, "purpose", v.PURPOSE_MAX)
        return StoredFile(
            id=new_id("file"),
            created_at=now_ms(),
            filename=name,
            bytes=size,
            purpose=upload.purpose,
            description=v.check_length(upload.description, "descriptions", v.DESCRIPTION_MAX),
            md5=hashlib.md5(upload.content, usedforsecurity=False).hexdigest(),
        )

    async def upload_files(self, ws: str, uploads: list[Upload]) -> list[StoredFile]:
        """Stores every upload, or none of them when one is refused."""
        stored = [self._new_file(upload) for upload in uploads]
        async with self.store.workspace(ws, write=True) as unit:
            for file, upload in zip(stored, uploads, strict=True):
                await unit.files.insert(file, upload.content)
        return stored

    async def upload_file(self, ws: str, upload: Upload) -> StoredFile:
        return (await self.upload_files(ws, [upload]))[0]

    async def get_file(self, ws: str, file_id: str) -> StoredFile:
        async with self.store.workspace(ws) as unit:
            found = await unit.files.get(file_id)
        if found is None:
            raise NotFound.of("file", file_id)
        return found

    async def file_content(self, ws: str, file_id: str) -> tuple[StoredFile, bytes]:
        async with self.store.workspace(ws) as unit:
            found = await unit.files.get(file_id)
            content = await unit.files.content(file_id)
        if found is None or content is None:
            raise NotFound.of("file", file_id)
        return found, content

    async def list_files(
        self, ws: str, page: PageRequest, purpose: str | None = None
    ) -> Page[StoredFile]:
        async with self.store.workspace(ws) as unit:
            return await unit.files.page(page, purpose)

    async def list_files_by_number(
        self, ws: str, page_no: int, page_size: int
    ) -> tuple[list[StoredFile], int]:
        """One numbered page of files, newest first, and the total count."""
        if not 1 <= page_no <= v.PAGE_NO_MAX:
            raise InvalidRequest(f"'page_no' must be between 1 and {v.PAGE_NO_MAX}.", "page_no")
        if not 1 <= page_size <= 100:
            raise InvalidRequest("'page_size' must be between 1 and 100.", "page_size")
        async with self.store.workspace(ws) as unit:
            return await unit.files.window(
                (page_no - 1) * page_size, page_size
            ), await unit.files.count()

    async def delete_file(self, ws: str, file_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            if not await unit.files.delete(file_id):
                raise NotFound.of("file", file_id)


def _merge_sampling(current: SamplingParams, patch: SamplingParams) -> SamplingParams:
    return SamplingParams(
        **{
            name: getattr(patch, name)
            if getattr(patch, name) is not None
            else getattr(current, name)
            for name in ("temperature", "top_p", "top_k", "max_tokens")
        }
    )


def _build_message(
    thread_id: str, spec: MessageSpec, where: str | None, created_at: int
) -> Message:
    def name(field_name: str) -> str:
        return f"{where}.{field_name}" if where else field_name

    content = (v.message_content if spec.images else v.text_content)(spec.content, name("content"))
    attachments = _attachments(spec, name)
    return Message(
        id=new_id("msg"),
        thread_id=thread_id,
        created_at=created_at,
        role=v.check_role(spec.role, name("role")),
        content=content,
        file_ids=[a.file_id for a in attachments],
        metadata=v.check_metadata(spec.metadata, name("metadata")),
        status="completed",
        completed_at=created_at,
        attachments=attachments,
    )


def _attachments(spec: MessageSpec, name: Callable[[str], str]) -> list[Attachment]:
    """The message's files, each once (the tools of repeats merged)."""
    if spec.attachments is None:
        file_ids = v.check_file_ids(spec.file_ids, name("file_ids"), v.MESSAGE_FILES_MAX)
        return [Attachment(f) for f in file_ids]
    field_name = name("attachments")
    v.check_file_ids([a.file_id for a in spec.attachments], field_name, v.MESSAGE_FILES_MAX)
    merged: dict[str, list[str]] = {}
    for i, a in enumerate(spec.attachments):
        tools = v.check_attachment_tools(a.tools, f"{field_name}[{i}].tools")
        merged[a.file_id] = list(dict.fromkeys([*merged.get(a.file_id, []), *tools]))
    return [Attachment(f, tools) for f, tools in merged.items()]


def _message_files(message: Message) -> list[MessageFile]:
    return [
        MessageFile(id=f, message_id=message.id, created_at=message.created_at)
        for f in message.file_ids
    ]


def _page_of_ids(items: list[MessageFile], page: PageRequest) -> Page[MessageFile]:
    """Pages a short in-memory list (a message has at most 10 files) like the store pages rows."""
    ordered = items if page.order == "asc" else list(reversed(items))
    ids = [item.id for item in ordered]
    for name, cursor in (("after", page.after), ("before", page.before)):
        if cursor is not None and cursor not in ids:
            raise InvalidRequest(
                f"'{name}' names '{echo(cursor)}', which is not in this list.", name
            )
    start = ids.index(page.after) + 1 if page.after else 0
    stop = ids.index(page.before) if page.before else len(ids)
    window = ordered[start:stop]
    if page.before and not page.after:
        return Page(window[-page.limit :], len(window) > page.limit)
    return Page(window[: page.limit], len(window) > page.limit)


async def add_messages(
    unit: WorkspaceUnit, thread_id: str, specs: list[MessageSpec], where: str
) -> list[Message]:
    """Messages added to a thread with a run (a run's `additional_messages`); `where`
    names their field in errors."""
    now = now_ms()
    built = [_build_message(thread_id, m, f"{where}[{i}]", now) for i, m in enumerate(specs)]
    for i, (message, spec) in enumerate(zip(built, specs, strict=True)):
        await _require_message_files(unit, message, f"{where}[{i}].{files_field(spec)}")
    await unit.messages.insert_many(built)
    return built
