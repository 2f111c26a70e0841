"""Cursor pagination (limit/order/after/before) on every SDK list call of the object
surface: pages carry first_id/last_id/has_more and together give every item once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dashscope import Assistants, Messages, Threads
from dashscope.assistants import files as assistant_files

from tests.support.sdk import assert_error, assert_ok, assert_raw_error, raw_client, upload
from tests.support.server import RunningServer

Lister = Callable[..., Any]


def _check_page(page: Any, expected: list[str], has_more: bool) -> None:
    assert_ok(page)
    ids = [item.id for item in page.data]
    assert ids == expected
    assert page.first_id == (expected[0] if expected else None)
    assert page.last_id == (expected[-1] if expected else None)
    assert page.has_more is has_more


def _walk_after(lister: Lister, order: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        page = lister(limit=limit, order=order, after=after)
        assert_ok(page)
        pages.append([item.id for item in page.data])
        assert len(page.data) <= limit
        if not page.has_more:
            return pages
        after = page.last_id


def _walk_before(lister: Lister, order: str, limit: int, start: str) -> list[list[str]]:
    pages: list[list[str]] = []
    before = start
    while True:
        page = lister(limit=limit, order=order, before=before)
        assert_ok(page)
        pages.append([item.id for item in page.data])
        if not page.has_more:
            return pages
        before = page.first_id


def _check_paging(lister: Lister, created: list[str]) -> None:
    """`created` oldest first, seven items."""
    assert len(created) == 7
    newest_first = created[::-1]
    # Default: newest first, 20 a page.
    _check_page(lister(), newest_first, False)
    # Forwards, both orders.
    assert _walk_after(lister, "asc", 3) == [created[0:3], created[3:6], created[6:]]
    assert _walk_after(lister, "desc", 3) == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:],
    ]
    _check_page(lister(limit=3, order="asc"), created[0:3], True)
    _check_page(lister(limit=3, order="asc", after=created[2]), created[3:6], True)
    _check_page(lister(limit=3, order="asc", after=created[5]), created[6:], False)
    _check_page(lister(limit=3, order="asc", after=created[6]), [], False)
    _check_page(lister(limit=7, order="desc"), newest_first, False)
    _check_page(lister(limit=6, order="desc"), newest_first[:6], True)
    # Backwards from the far end: pages keep the requested order inside them.
    assert _walk_before(lister, "asc", 3, created[6]) == [created[3:6], created[0:3]]
    _check_page(lister(limit=3, order="asc", before=created[3]), created[0:3], False)
    _check_page(lister(limit=2, order="asc", before=created[3]), created[1:3], True)
    _check_page(lister(limit=3, order="desc", before=created[0]), newest_first[3:6], True)
    _check_page(lister(limit=3, order="desc", before=created[6]), [], False)
    # Every item once across a full walk.
    walked = [i for page in _walk_after(lister, "desc", 2) for i in page]
    assert walked == newest_first and len(set(walked)) == 7
    # One at a time.
    assert _walk_after(lister, "asc", 1) == [[i] for i in created]


def test_assistants_pagination(ds: str) -> None:
    created = [Assistants.create(model="qwen-max", name=f"a{i}").id for i in range(7)]
    _check_paging(Assistants.list, created)


def test_messages_pagination(ds: str) -> None:
    thread = Threads.create(messages=[{"role": "user", "content": f"m{i}"} for i in range(3)])
    first = Messages.list(thread.id, order="asc")
    created = [m.id for m in first.data]
    created += [Messages.create(thread.id, content=f"m{i}").id for i in range(3, 7)]

    def lister(**kwargs: Any) -> Any:
        return Messages.list(thread.id, **kwargs)

    _check_paging(lister, created)


def test_assistant_files_pagination(ds: str, tmp_path: Path) -> None:
    assistant = Assistants.create(model="qwen-max")
    created = []
    for i in range(7):
        path = tmp_path / f"f{i}.txt"
        path.write_text(str(i))
        file_id = upload(path)
        assert_ok(assistant_files.Files.create(assistant.id, file_id=file_id))
        created.append(file_id)

    def lister(**kwargs: Any) -> Any:
        return assistant_files.Files.list(assistant.id, **kwargs)

    _check_paging(lister, created)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"order": "ASC "}, "order"),
        ({"after": "asst_not_here"}, "after"),
        ({"before": "asst_not_here"}, "before"),
    ],
)
def test_bad_list_parameters_are_named(ds: str, kwargs: dict[str, Any], named: str) -> None:
    Assistants.create(model="qwen-max")
    listed = Assistants.list(**kwargs)
    assert_error(listed, 400, "InvalidParameter", f"'{named}'")
    assert listed.data == []


def test_cursor_from_another_list_is_refused(ds: str) -> None:
    one = Threads.create(messages=[{"role": "user", "content": "one"}])
    two = Threads.create(messages=[{"role": "user", "content": "two"}])
    foreign = Messages.list(one.id).data[0].id
    assert_error(Messages.list(two.id, after=foreign), 400, "InvalidParameter", "'after'")
    assistant = Assistants.create(model="qwen-max")
    assert_error(Assistants.list(before=one.id), 400, "InvalidParameter", "'before'")
    assert_error(
        assistant_files.Files.list(assistant.id, after=assistant.id), 400, "InvalidParameter"
    )
    assert_error(Messages.list(one.id, limit=500), 400, "InvalidParameter", "'limit'")


def test_limit_that_is_not_a_number(server: RunningServer, ds: str) -> None:
    with raw_client(server) as client:
        assert_raw_error(client.get("/assistants?limit=ten"), 400, "InvalidParameter", "'limit'")
        assert_raw_error(client.get("/assistants?limit="), 400, "InvalidParameter", "'limit'")
        ok = client.get("/assistants?limit=100&order=asc")
        assert ok.status_code == 200 and ok.json()["data"] == []
