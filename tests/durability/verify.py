"""What the durability test counts once every run has ended: each thread's messages and
each run's steps as the server stored them, and each SSE leg as its client read it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.durability.scenario import FINAL, Api, Leg, Outcome


@dataclass
class Counts:
    runs: int = 0
    completed: int = 0
    requires_action_seen: int = 0  # runs that waited for a client output (then went on)
    run_errors: list[str] = field(default_factory=list)
    messages_expected: int = 0
    messages_found: int = 0
    messages_lost: int = 0
    messages_duplicated: int = 0
    messages_wrong: list[str] = field(default_factory=list)
    steps: int = 0
    steps_duplicated: int = 0
    steps_missing: int = 0
    steps_left_open: int = 0
    steps_abandoned: int = 0  # not completed, of a run that did complete: an attempt cut off
    step_errors: list[str] = field(default_factory=list)
    streams: int = 0
    streams_coherent: int = 0
    streams_restarted: int = 0  # saw a cut-off reply given up and the turn asked again
    streams_resumed: int = 0  # cut by their client and followed again on another replica
    # Legs with ids whose run's last events were never published (a worker killed between
    # a commit and its publish): the leg ended with the run as stored, an event with no id.
    streams_ended_from_store: int = 0
    stream_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.completed == self.runs
            and not self.run_errors
            and self.messages_lost == self.messages_duplicated == 0
            and not self.messages_wrong
            and self.steps_duplicated == self.steps_missing == self.steps_left_open == 0
            and not self.step_errors
            and self.streams_coherent == self.streams
        )

    def lines(self) -> list[str]:
        return [
            f"runs completed        {self.completed}/{self.runs}"
            f" ({self.requires_action_seen} went through requires_action)",
            f"messages              {self.messages_found} found, {self.messages_expected} expected:"
            f" {self.messages_lost} lost, {self.messages_duplicated} duplicated,"
            f" {len(self.messages_wrong)} with the wrong text",
            f"steps                 {self.steps}: {self.steps_duplicated} duplicated,"
            f" {self.steps_missing} missing, {self.steps_left_open} left in progress,"
            f" {self.steps_abandoned} abandoned attempts",
            f"SSE legs coherent     {self.streams_coherent}/{self.streams}"
            f" ({self.streams_restarted} saw a cut-off reply given up and asked again;"
            f" {self.streams_resumed} hung up and resumed on the other replica;"
            f" {self.streams_ended_from_store} with ids ended with the run as stored)",
        ]

    def problems(self, limit: int = 10) -> list[str]:
        found = self.run_errors + self.messages_wrong + self.step_errors + self.stream_errors
        return found[:limit]


async def count(api: Api, outcomes: list[Outcome]) -> Counts:
    counts = Counts(runs=len(outcomes))
    for out in outcomes:
        if out.status == "completed" and not out.error:
            counts.completed += 1
        else:
            counts.run_errors.append(f"{out.plan.tag} ({out.plan.kind}): {out.status} {out.error}")
        counts.requires_action_seen += out.submitted > 0
    by_thread: dict[str, list[Outcome]] = {}
    for out in outcomes:
        by_thread.setdefault(out.thread_id, []).append(out)
    for thread_id, runs in by_thread.items():
        replies = await _check_messages(api, thread_id, runs, counts)
        for out in runs:
            if out.run_id:
                await _check_steps(api, out, replies.get(out.plan.turn), counts)
            for leg in out.legs:
                _check_leg(out, leg, counts, replies.get(out.plan.turn))
    return counts


def _text(message: dict[str, Any]) -> str:
    return "".join(
        part["text"]["value"] for part in message.get("content") or [] if part.get("type") == "text"
    )


async def _check_messages(
    api: Api, thread_id: str, runs: list[Outcome], counts: Counts
) -> dict[int, str]:
    """Each turn: the user's question, then exactly one reply with the run's text.
    Returns turn -> the reply's message id."""
    listed = await api.call("GET", f"/threads/{thread_id}/messages?limit=100&order=asc")
    messages = listed["data"]
    counts.messages_found += len(messages)
    counts.messages_expected += 2 * len(runs)
    replies: dict[int, str] = {}
    by_run = Counter(m.get("run_id") for m in messages if m["role"] == "assistant")
    for out in sorted(runs, key=lambda o: o.plan.turn):
        mine = [m for m in messages if m["role"] == "assistant" and m.get("run_id") == out.run_id]
        if not mine:
            counts.messages_lost += 1
            continue
        counts.messages_duplicated += by_run[out.run_id] - 1
        replies[out.plan.turn] = mine[-1]["id"]
        if (text := _text(mine[-1])) != out.plan.answer:
            counts.messages_wrong.append(f"{out.plan.tag}: reply {text[:60]!r}")
    questions = [_text(m) for m in messages if m["role"] == "user"]
    wanted = [o.plan.question for o in sorted(runs, key=lambda o: o.plan.turn)]
    if questions != wanted:
        counts.messages_wrong.append(f"{runs[0].plan.tag}: questions {questions} != {wanted}")
    roles = [m["role"] for m in messages]
    if roles != ["user", "assistant"] * len(runs):
        counts.messages_wrong.append(f"{runs[0].plan.tag}: roles in order {roles}")
    return replies


async def _check_steps(api: Api, out: Outcome, reply_id: str | None, counts: Counts) -> None:
    path = f"/threads/{out.thread_id}/runs/{out.run_id}/steps?limit=100&order=asc"
    steps = (await api.call("GET", path))["data"]
    counts.steps += len(steps)
    ids = Counter(s["id"] for s in steps)
    counts.steps_duplicated += sum(n - 1 for n in ids.values())
    done = [s for s in steps if s["status"] == "completed"]
    open_ = [s for s in steps if s["status"] in ("in_progress", "queued")]
    counts.steps_left_open += len(open_) if out.status == "completed" else 0
    counts.steps_abandoned += len(steps) - len(done) - len(open_)
    wanted = {"message_creation": 1, "tool_calls": 0 if out.plan.kind == "plain" else 1}
    for kind, n in wanted.items():
        got = sum(1 for s in done if s["type"] == kind)
        counts.steps_missing += max(0, n - got)
        counts.steps_duplicated += max(0, got - n)
    for step in done:
        _check_step(out, step, reply_id, counts)


def _check_step(out: Outcome, step: dict[str, Any], reply_id: str | None, counts: Counts) -> None:
    details = step["step_details"]
    if step["type"] == "message_creation":
        made = details.get("message_creation", {}).get("message_id")
        if reply_id is not None and made != reply_id:
            counts.step_errors.append(f"{out.plan.tag}: step made {made}, reply is {reply_id}")
        return
    shown = json.dumps(details)
    expected = out.plan.output if out.plan.kind == "function" else str(out.plan.n**2)
    if expected not in shown:
        counts.step_errors.append(f"{out.plan.tag}: tool step lacks {expected!r}: {shown[:200]}")


def _check_leg(out: Outcome, leg: Leg, counts: Counts, reply_id: str | None) -> None:
    """Coherent: one final run event, last, then [DONE]; each message's deltas add up to
    what its completed event says; a message given up (`thread.message.incomplete`, a
    turn cut off by a dead worker) gets nothing more; the one message completed is the
    thread's reply."""
    counts.streams += 1
    problem = leg.error or _leg_problem(leg, counts)
    completed = {data["id"] for name, data in leg.events if name == "thread.message.completed"}
    if not problem and completed - {reply_id}:
        problem = f"completed {sorted(completed)}, but the thread's reply is {reply_id}"
    if problem:
        counts.stream_errors.append(f"{out.plan.tag} via {leg.replica}: {problem}")
    else:
        counts.streams_coherent += 1


def _ids_problem(leg: Leg, counts: Counts) -> str:
    """A leg that asked for ids has them one after another on every event, but for an
    ending made from the stored run (sse.py), which is in no log: last, final, no id."""
    numbered = [i for i in leg.ids if i is not None]
    if not numbered:
        return ""
    if numbered != list(range(numbered[0], numbered[0] + len(numbered))):
        return f"event ids not one after another: {leg.ids}"
    unnumbered = [k for k, i in enumerate(leg.ids) if i is None]
    if not unnumbered:
        return ""
    if unnumbered != [len(leg.events) - 1] or leg.events[-1][0] not in FINAL:
        return f"events without ids: {unnumbered} of {[name for name, _ in leg.events]}"
    counts.streams_ended_from_store += 1
    return ""


def _leg_problem(leg: Leg, counts: Counts) -> str:
    counts.streams_resumed += leg.resumed
    problem = _ids_problem(leg, counts)
    if problem:
        return problem
    names = [name for name, _ in leg.events]
    finals = [i for i, name in enumerate(names) if name in FINAL]
    if len(finals) != 1 or finals[0] != len(names) - 1 or not leg.done:
        return f"ends badly: {names[-3:]} done={leg.done}, {len(finals)} final events"
    texts: dict[str, str] = {}
    completed: Counter[str] = Counter()
    given_up: set[str] = set()
    counts.streams_restarted += any(name == "thread.message.incomplete" for name in names)
    for name, data in leg.events:
        if isinstance(data, dict) and data.get("id") in given_up:
            return f"{name} of message {data['id']} after it was given up"
        if name == "thread.message.incomplete":
            given_up.add(data["id"])
        elif name in ("thread.message.created", "thread.message.in_progress"):
            if texts.get(data["id"]):
                return f"message {data['id']} began again after {texts[data['id']][:40]!r}"
            texts[data["id"]] = ""
        elif name == "thread.message.delta":
            for part in data["delta"]["content"]:
                texts[data["id"]] = texts.get(data["id"], "") + part["text"]["value"]
        elif name == "thread.message.completed":
            completed[data["id"]] += 1
            if texts.get(data["id"], "") != _text(data):
                return f"deltas {texts.get(data['id'], '')[:60]!r} != message {_text(data)[:60]!r}"
    if any(n > 1 for n in completed.values()):
        return f"a message completed twice: {dict(completed)}"
    return ""
