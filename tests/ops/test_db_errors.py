"""A database error never carries tenant content: the engines hide SQL parameters, so the
error the server logs names the statement, not the values (defect 10)."""

from __future__ import annotations

import pytest

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import Assistant
from assistd.core.tenancy import Tenancy
from assistd.settings import Settings
from assistd.store.factory import open_store

SECRET = "tenant-secret-instructions-7f3a"


async def test_a_failed_statement_does_not_show_its_parameters(settings: Settings) -> None:
    store = open_store(settings)
    try:
        await store.migrate()
        workspace = await Tenancy(store).ensure_default_workspace()
        assistant = Assistant(id=new_id("asst"), created_at=now_ms(), model="m",
                              instructions=SECRET)  # fmt: skip
        async with store.workspace(workspace.id, write=True) as unit:
            await unit.assistants.insert(assistant)
        with pytest.raises(Exception) as failed:  # the same id twice: a unique violation
            async with store.workspace(workspace.id, write=True) as unit:
                await unit.assistants.insert(assistant)
    finally:
        await store.close()
    text = str(failed.value)
    assert "INSERT INTO assistants" in text, text  # it is the statement's error...
    assert SECRET not in text and "parameters hidden" in text, text  # ...without its values
