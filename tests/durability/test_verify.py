"""The durability test's reading of a leg's event ids (verify.py): what it lets pass is
what sse.py promises, and nothing more."""

from __future__ import annotations

from tests.durability.scenario import Leg
from tests.durability.verify import Counts, _ids_problem


def _leg(names: list[str], ids: list[int | None]) -> Leg:
    return Leg("replica", events=[(name, {}) for name in names], ids=ids)


STEPS = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]


def test_ids_one_after_another_pass() -> None:
    counts = Counts()
    assert _ids_problem(_leg([*STEPS, "thread.run.completed"], [4, 5, 6, 7]), counts) == ""
    assert _ids_problem(_leg(STEPS, [None, None, None]), counts) == ""  # asked for none
    assert counts.streams_ended_from_store == 0


def test_a_gap_in_the_ids_fails() -> None:
    problem = _ids_problem(_leg([*STEPS, "thread.run.completed"], [1, 2, 4, 5]), Counts())
    assert "not one after another" in problem


def test_an_ending_from_the_stored_run_has_no_id_and_is_counted() -> None:
    counts = Counts()
    leg = _leg([*STEPS, "thread.run.requires_action"], [1, 2, 3, None])
    assert _ids_problem(leg, counts) == ""
    assert counts.streams_ended_from_store == 1


def test_an_event_without_an_id_anywhere_else_fails() -> None:
    middle = _leg([*STEPS, "thread.run.completed"], [1, None, 2, 3])
    assert "without ids" in _ids_problem(middle, Counts())
    not_final = _leg([*STEPS, "error"], [1, 2, 3, None])
    assert "without ids" in _ids_problem(not_final, Counts())
