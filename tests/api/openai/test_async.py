"""The async client (`AsyncOpenAI`) over the same verbs."""

from __future__ import annotations

import asyncio

import openai

from tests.api.openai.conftest import openai_url
from tests.support.server import RunningServer


async def _flow(server: RunningServer, key: str) -> None:
    async with openai.AsyncOpenAI(base_url=openai_url(server), api_key=key, max_retries=0) as c:
        made = await asyncio.gather(*(c.beta.assistants.create(model="m") for _ in range(3)))
        listed = [a.id async for a in c.beta.assistants.list(limit=1)]
        assert sorted(listed) == sorted(a.id for a in made)
        thread = await c.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        message = await c.beta.threads.messages.create(thread.id, role="user", content="more")
        page = await c.beta.threads.messages.list(thread.id, limit=1)
        assert [m.id for m in page.data] == [message.id]
        file = await c.files.create(file=("a.txt", b"abc"), purpose="assistants")
        assert (await c.files.content(file.id)).content == b"abc"
        assert (await c.beta.threads.messages.delete(message.id, thread_id=thread.id)).deleted
        try:
            await c.beta.threads.retrieve("thread_none")
        except openai.NotFoundError as exc:
            assert exc.request_id
        else:
            raise AssertionError("a missing thread was found")


def test_async_client(server: RunningServer, workspace: tuple[str, str]) -> None:
    asyncio.run(_flow(server, workspace[1]))
