"""The run loop: context -> model stream -> tool calls -> steps and messages -> events.

State is committed before its event is published. Token deltas are only published; the
finished message is written once. Function tool calls stop the run in requires_action;
built-in tools run here and the loop goes on. A run whose worker stopped mid-way is taken
over from what was committed: a cut-off model turn is asked again, a recorded round of
tool calls runs only the calls that have no output yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable
from typing import TypeVar

from assistd.core import citations, rag
from assistd.core import run_options as ro
from assistd.core import runs as rs
from assistd.core.content_filter import ContentFilters
from assistd.core.context import build_context
from assistd.core.events import MessageDelta, run_event_name
from assistd.core.file_links import FileLinks
from assistd.core.ids import new_id, now_ms
from assistd.core.journal import Entry, Journal
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import (
    JsonDict,
    Message,
    MessageCreationDetails,
    Run,
    RunStep,
    ToolCall,
    ToolCallsDetails,
)
from assistd.core.rag_run import RagStage
from assistd.core.run_files import RunFiles, input_file_ids
from assistd.core.sandbox_paths import file_path_annotations
from assistd.core.service import Service
from assistd.core.tool_round import Made, RunCancelled, ToolRound, image_links, made_for_reply
from assistd.core.turn import CallKey, Turn, mark_repeats, new_step, round_outputs, step_usage
from assistd.logs import log_context
from assistd.models.base import (
    Finish,
    ModelError,
    ModelRequest,
    TextDelta,
    TextTaker,
    ToolCallDelta,
    Usage,
)
from assistd.models.registry import ModelRegistry, ResolvedModel
from assistd.queue.base import CancelChannel, RunJob
from assistd.settings import Settings
from assistd.store.base import Store
from assistd.tools.base import ToolContext
from assistd.tools.registry import OfferedTool, ToolRegistry

log = logging.getLogger("assistd.executor")
T = TypeVar("T")


class _Skip(enum.Enum):
    """Why a job runs nothing: its run ended (or is gone), or it is not this job's to run."""

    ENDED = "ended"
    NOT_MINE = "not_mine"


class Executor:
    def __init__(
        self,
        objects: Service,
        journal: Journal,
        models: ModelRegistry,
        tools: ToolRegistry,
        cancels: CancelChannel,
        settings: Settings,
        links: FileLinks | None = None,
        knowledge: KnowledgeService | None = None,
    ) -> None:
        self.objects = objects
        self.links = links  # signed links of the images a reply shows
        self.store: Store = objects.store
        self.journal = journal
        self.models = models
        self.tools = tools
        self.cancels = cancels
        self.settings = settings
        self.rounds = ToolRound(self.journal, tools, settings)
        self.rag = RagStage(journal, knowledge)  # the `rag` tool's search, before the model
        self.filters = ContentFilters(settings)
        self.telemetry = journal.telemetry

    # ---- entry point --------------------------------------------------------------------

    async def execute(self, job: RunJob) -> None:
        with (
            log_context(run_id=job.run_id, workspace=job.workspace_id),
            self.telemetry.run_leg(job.workspace_id, job.thread_id, job.run_id, job.trace),
        ):
            try:
                await self._execute(job)
            finally:  # cut off (a lease lost, a stop) with deltas still queued
                self.journal.forget(job.run_id)

    async def _execute(self, job: RunJob) -> None:
        started = time.monotonic()
        begun = await self._start(job)
        if not isinstance(begun, tuple):
            if begun is _Skip.ENDED:  # e.g. deleted while queued, with a cancel asked
                await self.cancels.forget(job.run_id)
            return
        run, taken_over, has_steps = begun
        turn: Turn | None = None
        try:
            turn = Turn()
            await self._loop(job, run, turn, taken_over, has_steps)
        except RunCancelled:
            await self._end(job, run, turn, rs.RunStatus.CANCELLED, None)
        except ModelError as exc:
            if exc.detail:  # the upstream's own words, for the operator only
                log.error("model endpoint error %s on model %s: %s", exc.error_id, run.model,
                          exc.detail)  # fmt: skip
            await self._end(
                job, run, turn, rs.RunStatus.FAILED, {"code": exc.code, "message": exc.message}
            )
        except Exception:
            log.exception("run %s failed on an internal error", run.id)
            error = {
                "code": "server_error",
                "message": "The server hit an internal error running this run.",
            }
            await self._end(job, run, turn, rs.RunStatus.FAILED, error)
        finally:
            self._log_end(run, time.monotonic() - started)
        # Only here, with the run ended, is its cancel request done with. A worker let go
        # of mid-run (CancelledError above) keeps it for the worker that takes the run
        # over; a leg waiting for tool outputs keeps it too, as the next leg's may be
        # asked already (a cancel never stands against a run waiting for outputs: it
        # ends such a run at once).
        if rs.is_terminal(run.status):
            # Only a run that was cancelling ends cancelled or failed: others had no request.
            await self.cancels.forget(run.id, asked=run.status in _ASKED_ENDS)

    def _log_end(self, run: Run, seconds: float) -> None:
        """One line per run (per leg, when it stops for tool outputs)."""
        usage = run.usage or {}
        code = (run.last_error or {}).get("code") if run.status == rs.RunStatus.FAILED else None
        self.telemetry.leg_ended(str(run.status), run.model, seconds, code)
        fields = {
            "status": str(run.status), "error_code": code, "model": run.model,
            "route": self.models.route_name(run.model), "duration_s": round(seconds, 3),
            **{k: int(usage.get(k, 0)) for k in ("total_tokens", "prompt_tokens",
                                                 "completion_tokens")},
        }  # fmt: skip
        log.info(
            "run %s: %s, model %s via route %s, %d tokens (%d prompt, %d completion), %.2f s",
            run.id, f"{run.status} ({code})" if code else run.status, run.model, fields["route"],
            fields["total_tokens"], fields["prompt_tokens"], fields["completion_tokens"], seconds,
            extra={"fields": fields},
        )  # fmt: skip

    async def _start(self, job: RunJob) -> tuple[Run, bool, bool] | _Skip:
        """The run moved from queued to in_progress, or (True) taken over as it is: the
        queue hands a job of the run's current leg whose run is still in progress (or
        cancelling) only when the worker that held it stopped (its lease lapsed, or the
        server restarted), so it is this worker's now. Its cut-off model turn is
        discarded in the same transaction. A job of an earlier leg is stale: the run was
        queued again since, and its own job (maybe held by a live worker) runs it.
        The third value: whether the run had steps (if not, they are not read)."""
        async with self.journal.entry(job.workspace_id) as entry:
            found = await entry.unit.runs.get_at_start(job.thread_id, job.run_id)
            if found is None:
                return _Skip.ENDED  # deleted while queued
            run, has_steps = found
            if job.leg is not None and job.leg != run.leg:
                log.info("run %s: a stale job of leg %d let go (the run is on leg %d)",
                         run.id, job.leg, run.leg)  # fmt: skip
                return _Skip.NOT_MINE
            if run.status in (rs.RunStatus.IN_PROGRESS, rs.RunStatus.CANCELLING):
                await entry.discard_cut_turn(run)
                self.telemetry.takeover()
                log.info("run %s: taken over %s, from what it committed", run.id, run.status)
                return run, True, True
            if run.status != rs.RunStatus.QUEUED:
                # ended while queued (cancelled, expired), or waiting for tool outputs
                return _Skip.ENDED if rs.is_terminal(run.status) else _Skip.NOT_MINE
            if not await entry.move(run, rs.RunStatus.IN_PROGRESS):
                return _Skip.ENDED  # cancelled just now, by another mover
        return run, False, has_steps

    async def _loop(
        self, job: RunJob, run: Run, turn: Turn, taken_over: bool, has_steps: bool = True
    ) -> None:
        if run.status == rs.RunStatus.CANCELLING:
            raise RunCancelled  # a cancel asked of the worker that stopped
        resolved = self.models.resolve(run.model)
        await self.tools.load(str(tool.get("type")) for tool in run.tools)
        context = await self._tool_context(job, run)
        if taken_over and await self._resume(job, run, context):
            return
        if run.leg == 1 and self.filters.active:  # again when taken over: it may not have ended
            async with self.store.workspace(job.workspace_id, write=True) as unit:
                blocked = await self.filters.check_input(unit, run)
            if blocked is not None:
                raise blocked
        # The run's first read said whether it has steps: a new run's are not read.
        rounds, previous, history = await self._tool_history(job, run) if has_steps else (0, {}, [])
        documents = None  # a run without `rag` skips the cancellable wait (two tasks a run)
        if rag.rag_tools(run.tools):
            documents = await self._cancellable(run, self.rag.prepare(job, run, history))
        steps: list[RunStep] | None = history
        must_answer = retried_empty = False
        unavailable: list[str] = []  # asked-for tools this server cannot run: the model is told
        while True:
            # Once the tool rounds are spent (or the model repeated its last round) it is
            # offered no tools at all, so it has to answer.
            spent = must_answer or rounds >= self.settings.max_tool_rounds
            if (reason := ro.cap_reached(run)) is not None:
                await self._incomplete(job, run, reason)
                return
            offered = [] if spent or run.options.tool_choice.mode == "none" else run.tools
            offered = rag.model_tools(offered)  # `rag` fills the prompt; the model never calls it
            offer = await self.tools.offer(offered, context)
            unavailable += [kind for kind in offer.unavailable if kind not in unavailable]
            definitions = offer.definitions
            turn.reset()
            turn.offered, turn.unavailable, turn.documents = offer.tools, unavailable, documents
            answer = self._model_turn(
                job, run, resolved, definitions, turn, unavailable, nonempty=retried_empty,
                forced=rounds == 0, steps=steps,
            )  # fmt: skip
            steps = None  # read again for later turns: this one writes steps
            await self._cancellable(run, answer)
            if turn.finish == "length" and ro.capped_turn(run):
                await self._close_turn(job, run, turn, [], "incomplete")
                await self._incomplete(job, run, "max_completion_tokens", turn)
                return
            if turn.message is None and not turn.calls and definitions:
                # Neither a reply nor a usable call (e.g. a tool call cut off by the token
                # cap): ask once more with no tools, so the run ends with an answer.
                must_answer = True
                continue
            if turn.message is None and not turn.calls:
                # A blank answer (no message was opened for it): ask once more, telling the
                # backend the reply may not end before it starts; a second one fails the run.
                _add_usage(run, turn.usage)
                if retried_empty:
                    raise ModelError("empty_reply", "The model returned no text, twice.")
                retried_empty = True
                continue
            calls = [] if spent else turn.finished_calls()
            must_answer = mark_repeats(calls, previous)  # not run again; answer instead
            await self._close_turn(job, run, turn, calls, then_complete=not turn.calls)
            if not turn.calls:
                return
            if spent:
                raise ModelError("max_tool_rounds", _still_calling(rounds, self.settings))
            rounds += 1
            if await self._tool_round(job, run, turn, offer.tools, calls, context):
                return  # waiting for the client's tool outputs
            previous = round_outputs(calls)

    async def _resume(self, job: RunJob, run: Run, context: ToolContext) -> bool:
        """Picks up a taken-over run (its cut-off turn already discarded) where its last
        commit left it: a recorded round of tool calls runs the calls that have no output
        yet; a reply already written ends the run. True when the run stopped here
        (completed, or waiting for function outputs); False: the loop asks the model."""
        async with self.store.workspace(job.workspace_id) as unit:
            steps = await unit.steps.all_of(run.id)
        for step in steps:
            if step.status == "in_progress" and isinstance(step.step_details, ToolCallsDetails):
                offer = await self.tools.offer(run.tools, context)
                await self._cancellable(run, self.rounds.run(job, run, step, offer.tools, context))
                return await self.rounds.close(job, run, step, step.usage)
        last = steps[-1] if steps else None
        if last is not None and isinstance(last.step_details, MessageCreationDetails):
            await self._complete(job, run)  # the last reply was written; the run was not ended
            return True
        return False

    async def _tool_history(
        self, job: RunJob, run: Run
    ) -> tuple[int, dict[CallKey, str | None], list[RunStep]]:
        """Tool-call rounds the run already had (it may be resuming after tool outputs),
        what the calls of the last one returned, and the steps they were read from
        (which the first model turn's context reuses: nothing is written in between)."""
        async with self.store.workspace(job.workspace_id) as unit:
            steps = await unit.steps.all_of(run.id)
        rounds = [
            s.step_details
            for s in steps
            if isinstance(s.step_details, ToolCallsDetails) and not rag.is_rag_step(s)
        ]
        return len(rounds), round_outputs(rounds[-1].tool_calls if rounds else []), steps

    async def _tool_context(self, job: RunJob, run: Run) -> ToolContext:
        files = RunFiles(self.objects, job.workspace_id, self.links)
        # Only server-run tools read input files: a run without them skips the query.
        inputs = (
            await input_file_ids(self.objects, job.workspace_id, run) if _runs_tools(run) else ()
        )
        return ToolContext(
            job.workspace_id, run.thread_id, run.id, files=files, input_file_ids=inputs
        )

    async def _cancellable(self, run: Run, work: Awaitable[T]) -> T:
        """Runs a model turn or a round of tool calls, abandoning it (and every call in
        it) as soon as a cancel is requested."""
        task = asyncio.ensure_future(work)
        waiter = asyncio.ensure_future(self.cancels.cancelled(run.id))
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the worker let go of the run: so does its work
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise RunCancelled

    # ---- one model turn -----------------------------------------------------------------

    async def _model_turn(
        self,
        job: RunJob,
        run: Run,
        resolved: ResolvedModel,
        definitions: list[JsonDict],
        turn: Turn,
        unavailable: list[str],
        nonempty: bool = False,
        forced: bool = True,
        steps: list[RunStep] | None = None,
    ) -> None:
        """`forced`: the run's tool choice applies (its first turn; after a round of
        calls the model answers as it chooses, or it would call tools for ever).
        `steps`: the run's steps as stored now, when the caller has just read them."""
        max_tokens = ro.turn_max_tokens(run, run.sampling.max_tokens or resolved.max_output_tokens)
        reserve = max_tokens or min(1024, resolved.context_window // 4)
        window = ro.turn_window(run, resolved.context_window, reserve)
        async with self.store.workspace(job.workspace_id) as unit:
            context = await build_context(
                unit, run, window, reserve, unavailable, run.options.last_messages, steps,
                instructions=turn.documents.instructions if turn.documents else None,
            )  # fmt: skip
        request = ModelRequest(
            model=resolved.upstream_model,
            messages=context.messages,
            tools=definitions,
            temperature=run.sampling.temperature,
            top_p=run.sampling.top_p,
            top_k=run.sampling.top_k,
            max_tokens=max_tokens,
            nonempty=nonempty,
            **ro.turn_shape(run, turn.offered, forced),
        )
        take_text = self._text_taker(run, turn)
        with self.telemetry.model_call(run.model):
            async for chunk in resolved.backend.stream(request, take_text):
                if isinstance(chunk, TextDelta):
                    await self._on_text(job, run, turn, chunk.text)
                elif isinstance(chunk, ToolCallDelta):
                    await self.rounds.on_delta(job, run, turn, chunk)
                elif isinstance(chunk, Usage):
                    turn.usage = chunk
                elif isinstance(chunk, Finish):
                    turn.finish = chunk.reason

    def _text_taker(self, run: Run, turn: Turn) -> TextTaker:
        """Publishes a token of the reply where the model's connection receives it, once
        the reply's message is open (opening it is a transaction: `_on_text`)."""

        def take(text: str) -> bool:
            message = turn.message
            if message is None:
                return False
            delta = MessageDelta(message.id, text)
            if not self.journal.publish_now(run.id, "thread.message.delta", delta):
                return False
            turn.text.append(text)
            return True

        return take

    async def _on_text(self, job: RunJob, run: Run, turn: Turn, text: str) -> None:
        turn.text.append(text)
        if turn.message is None:
            # The message opens with the first visible character, so a blank answer leaves
            # no empty message behind; the blank text before it goes out with that character.
            if not text.strip():
                return
            await self._open_message(job, run, turn)
            text = "".join(turn.text)
        assert turn.message is not None
        await self.journal.publish(
            run.id, "thread.message.delta", MessageDelta(turn.message.id, text)
        )

    async def _open_message(self, job: RunJob, run: Run, turn: Turn) -> None:
        self.telemetry.first_text()  # the leg's first visible text: its time to first token
        now = now_ms()
        message = Message(
            id=new_id("msg"), thread_id=run.thread_id, created_at=now, role="assistant", content=[],
            assistant_id=run.assistant_id, run_id=run.id, status="in_progress",
        )  # fmt: skip
        step = new_step(run, MessageCreationDetails(message.id))
        async with self.journal.entry(job.workspace_id) as entry:
            await entry.open_step(run, step)
            await entry.open_message(run, message)
        turn.message, turn.message_step = message, step

    async def _close_turn(
        self,
        job: RunJob,
        run: Run,
        turn: Turn,
        calls: list[ToolCall],
        status: str = "completed",
        *,
        then_complete: bool = False,
    ) -> None:
        """Writes the turn's reply, once: complete, or (`status` "incomplete") cut off by a
        token cap, its step still completed, the reply being all there will be. Records
        the calls of its tool step in the same transaction: a worker taking the run over
        finds the whole turn or none of it. Calls that are all the client's, with no
        reply, are not recorded here (a takeover asks the model again; nothing was run).
        `then_complete`: the turn is the run's last, and the run completes in the same
        transaction (nothing else of it is open)."""
        message, step = turn.message, turn.message_step
        reply = (message, step) if message and step and message.status == "in_progress" else None
        tools = turn.tool_step if calls and (reply or not _clients_only(calls)) else None
        blocked = None
        if reply:
            await self._complete_reply(job, run, turn, *reply, status)
            if self.filters.active:
                blocked = await self.filters.check_reply(reply[0])
        elif tools is None:
            if then_complete:
                await self._complete(job, run)
            return
        if tools is not None:
            tools.step_details = ToolCallsDetails(calls)
        async with self.journal.entry(job.workspace_id) as entry:
            if reply:
                await entry.save_message(run, reply[0])
                await entry.save_step(run, reply[1])
            if tools is not None:
                await entry.save_step(run, tools, announce=False)
            # A withheld reply fails the run instead: it does not complete with it.
            done = (
                blocked is None
                and then_complete
                and await self._finish_in(entry, run, rs.RunStatus.COMPLETED, None, [], closed=True)
            )
        if blocked is not None:
            raise blocked  # the reply is stored withheld; the run fails
        if then_complete and not done:
            await self._complete(job, run)

    async def _complete_reply(
        self, job: RunJob, run: Run, turn: Turn, message: Message, step: RunStep, status: str
    ) -> None:
        made = await self._made(job, run, step.id)
        if made.image_file_ids and self.links is not None:
            # The dashscope SDK drops image_file parts: the text links each image too.
            links = image_links(self.links, job.workspace_id, made.image_file_ids)
            await self._on_text(job, run, turn, ("\n\n" if turn.text else "") + links)
        _fill_reply(run, turn, message, step, made)
        if made.file_ids or made.searches:
            await self._annotate(job, message, made)
        if turn.documents is not None:
            rag.cite(message, turn.documents.items)  # the [n] markers the model wrote
        message.status, step.status = status, "completed"
        message.completed_at = step.completed_at = now_ms()

    async def _annotate(self, job: RunJob, message: Message, made: Made) -> None:
        """Each sandbox path the reply names of a file the tools wrote: a `file_path`
        annotation of its text; each citation marker of a search result it was given: a
        `file_citation` one."""
        async with self.store.workspace(job.workspace_id) as unit:
            stored = [await unit.files.get(file_id) for file_id in made.file_ids]
        names = {f.filename: f.id for f in stored if f is not None}
        for part in message.content:
            if part.get("type") == "text":
                value = part["text"]["value"]
                found = file_path_annotations(value, names) if names else []
                found += citations.file_citations(value, made.searches)
                part["text"]["annotations"] = sorted(found, key=lambda a: a["start_index"])

    async def _made(self, job: RunJob, run: Run, message_step_id: str) -> Made:
        if not _runs_tools(run):
            return Made([], [])  # only server-run tools make files: nothing to read
        async with self.store.workspace(job.workspace_id) as unit:
            return made_for_reply(await unit.steps.all_of(run.id), message_step_id)

    async def _live(self, job: RunJob, run: Run, turn: Turn) -> list[RunStep | Message]:
        """The turn's steps and half-written reply as the executor holds them, for the
        journal to close when the run stops early."""
        message, step = turn.message, turn.message_step
        if message is not None and step is not None and message.status == "in_progress":
            _fill_reply(run, turn, message, step, await self._made(job, run, step.id))
        return [item for item in (message, step, turn.tool_step) if item is not None]

    # ---- tools ------------------------------------------------------------------------

    async def _tool_round(
        self,
        job: RunJob,
        run: Run,
        turn: Turn,
        offered: dict[str, OfferedTool],
        calls: list[ToolCall],
        context: ToolContext,
    ) -> bool:
        """Runs the server's calls that have no output yet; returns True when the run now
        waits for function outputs."""
        assert turn.tool_step is not None
        step = turn.tool_step
        step.step_details = ToolCallsDetails(calls)  # a cancelled round still shows its calls
        await self._cancellable(run, self.rounds.run(job, run, step, offered, context))
        _add_usage(run, turn.usage)
        return await self.rounds.close(job, run, step, step_usage(turn.usage))

    # ---- endings ------------------------------------------------------------------------

    async def _complete(self, job: RunJob, run: Run) -> None:
        await self._finish(job, run, rs.RunStatus.COMPLETED, None)

    async def _incomplete(
        self, job: RunJob, run: Run, reason: str, turn: Turn | None = None
    ) -> None:
        """Ends the run `incomplete`: a token cap of the run was reached."""
        if turn is not None:
            _add_usage(run, turn.usage if turn.calls else None)  # a reply's counted already
        run.incomplete_reason = reason
        await self._finish(job, run, rs.RunStatus.INCOMPLETE, None)

    async def _finish(
        self,
        job: RunJob,
        run: Run,
        status: rs.RunStatus,
        error: JsonDict | None,
        live: list[RunStep | Message] | None = None,
    ) -> None:
        """Ends the run `status`, closing what is still open, unless it already ended.
        Another mover (a cancel) may move it first: then it is read again."""
        while not await self._finish_once(job, run, status, error, live or []):
            pass

    async def _finish_once(
        self,
        job: RunJob,
        run: Run,
        status: rs.RunStatus,
        error: JsonDict | None,
        live: list[RunStep | Message],
    ) -> bool:
        async with self.journal.entry(job.workspace_id) as entry:
            return await self._finish_in(entry, run, status, error, live)

    async def _finish_in(
        self,
        entry: Entry,
        run: Run,
        status: rs.RunStatus,
        error: JsonDict | None,
        live: list[RunStep | Message],
        closed: bool = False,
    ) -> bool:
        """`_finish_once` in a transaction of the caller's. `closed`: the executor closed
        every step of the run itself, so none is looked for."""
        # The run as this worker holds it is almost always the run as stored: the
        # compare-and-set tries that first and reads the run only when it fails.
        target = _ending(run.status, status)
        if rs.can_transition(run.status, target) and await entry.stop(
            run, target, error, step_error=error, live=live, closed=closed
        ):
            return True
        current = await entry.unit.runs.get(run.thread_id, run.id)
        if current is None:
            # Deleted with its thread: streams still reading it are told it ended.
            rs.transition(run, rs.RunStatus.CANCELLED, now_ms())
            entry.emit(run.id, run_event_name(run), run)
            return True
        if rs.is_terminal(current.status):
            # Already ended (e.g. expired while the last turn ran): as it ended.
            run.status = current.status
            return True
        run.status = current.status
        return await entry.stop(
            run, _ending(current.status, status), error, step_error=error, live=live
        )

    async def _end(
        self, job: RunJob, run: Run, turn: Turn | None, status: rs.RunStatus, error: JsonDict | None
    ) -> None:
        """Ends a run that stopped early: what was open is closed as incomplete/cancelled."""
        try:
            live = await self._live(job, run, turn) if turn is not None else []
            await self._finish(job, run, status, error, live)
        except Exception:
            log.exception("could not record the end of run %s", run.id)


def _ending(current: str, status: rs.RunStatus) -> rs.RunStatus:
    """How a run in `current` ends when the executor ends it `status`: a run told to
    cancel that ends this way on its own ends cancelled instead."""
    if current == rs.RunStatus.CANCELLING and status in _ENDS_WELL:
        return rs.RunStatus.CANCELLED
    return status


# How a run whose cancel was asked (it became cancelling) can end.
_ASKED_ENDS = (rs.RunStatus.CANCELLED, rs.RunStatus.FAILED)
# A run told to cancel that ends this way on its own ends cancelled instead.
_ENDS_WELL = (rs.RunStatus.COMPLETED, rs.RunStatus.INCOMPLETE)


def _fill_reply(run: Run, turn: Turn, message: Message, step: RunStep, made: Made) -> None:
    """The reply's content as the turn wrote it, with what the tools made."""
    message.content = [
        *({"type": "image_file", "image_file": {"file_id": f}} for f in made.image_file_ids),
        {"type": "text", "text": {"value": "".join(turn.text), "annotations": []}},
    ]
    message.file_ids = [*message.file_ids, *made.file_ids]
    if not turn.calls:
        step.usage = step_usage(turn.usage)
    _add_usage(run, turn.usage if not turn.calls else None)


def _add_usage(run: Run, usage: Usage | None) -> None:
    if usage is None:
        return
    total = dict(run.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    total["prompt_tokens"] += usage.prompt_tokens
    total["completion_tokens"] += usage.completion_tokens
    total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
    run.usage = total


def _still_calling(rounds: int, settings: Settings) -> str:
    """Why a run ends when the model calls tools on the turn that had to answer."""
    if rounds >= settings.max_tool_rounds:
        return (
            f"The model still called tools after {rounds} rounds of tool calls, the most "
            "a run allows (max_tool_rounds)."
        )
    return "The model called tools again when it was asked to answer without them."


def _clients_only(calls: list[ToolCall]) -> bool:
    """Whether the server runs none of the calls (each is the client's, or has an output)."""
    return all(call.type == "function" or call.output is not None for call in calls)


def _runs_tools(run: Run) -> bool:
    """Whether the run has tools the server runs (which read and make files)."""
    return any(tool.get("type") != "function" for tool in run.tools)
