"""Files as a run's tools see them: read the run's inputs, save outputs, all in the run's
workspace."""

from __future__ import annotations

from assistd.core.file_links import FileLinks, file_links
from assistd.core.objects import PageRequest, Run
from assistd.core.service import Service, Upload
from assistd.errors import AssistdError

OUTPUT_PURPOSE = "assistants_output"


class RunFiles:
    def __init__(self, service: Service, workspace_id: str, links: FileLinks | None = None) -> None:
        self.service = service
        self.workspace_id = workspace_id
        self._links = links  # the server's (app.state.file_links); made from settings if None

    async def read(self, file_id: str) -> tuple[str, bytes] | None:
        try:
            stored, content = await self.service.file_content(self.workspace_id, file_id)
        except AssistdError:
            return None
        return stored.filename, content

    async def save(self, filename: str, content: bytes) -> str:
        upload = Upload(filename=filename, content=content, purpose=OUTPUT_PURPOSE)
        return (await self.service.upload_file(self.workspace_id, upload)).id

    def link(self, file_id: str) -> str:
        if self._links is None:
            self._links = file_links(self.service.settings)
        return self._links.url(self.workspace_id, file_id)


async def input_file_ids(service: Service, workspace_id: str, run: Run) -> tuple[str, ...]:
    """The assistant's files, the thread's (its tool_resources), then those of the
    thread's recent messages, each once."""
    thread_files, page = await service.thread_files(
        workspace_id, run.thread_id, PageRequest(limit=100)
    )
    from_messages = [f for m in reversed(page.items) for f in m.file_ids]
    return tuple(dict.fromkeys([*run.file_ids, *thread_files, *from_messages]))
