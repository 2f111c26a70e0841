"""`code_interpreter` through the real SDK with the scripted model choosing the code: state
kept per thread between runs, figures delivered as image files, files in and out, what
the model is told, and how the DashScope surface renders the calls (spec 6.7, 13.4)."""

from __future__ import annotations

import csv
import io
import json
import secrets
from pathlib import Path
from typing import Any

import dashscope
import httpx
from dashscope import Messages, Runs, Steps
from PIL import Image

from tests.conftest import make_workspace
from tests.support.fake_model import FakeModel, Reply
from tests.support.sdk import upload
from tests.support.server import RunningServer
from tests.tools.helpers import (
    assert_links_to,
    code_call,
    converse,
    image_link,
    new_conversation,
    ok,
    run_code,
)

PLOT = """\
import matplotlib.pyplot as plt
xs = [x / 10 for x in range(-50, 51)]
plt.plot(xs, [x * x for x in xs])
plt.title("y = x^2")
plt.show()
"""


def test_a_variable_set_in_one_run_is_there_in_the_next(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation, first = converse(
        server,
        fake_model,
        code_call("answer = 41\nprint('set')"),
        Reply("I set it."),
        code_call("answer + 1"),
        Reply("It is 42."),
        question="Set answer to 41.",
    )
    assert conversation.outputs(first) == ["stdout:\nset\n"]
    second = conversation.run("What is answer + 1?")
    assert conversation.outputs(second) == ["result:\n42"]
    assert conversation.told_model() == ["result:\n42"]


def test_a_plot_is_an_image_file_part_of_the_reply(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation, run_id = converse(
        server,
        fake_model,
        code_call(PLOT),
        Reply("Here is the plot."),
        question="plot y = x^2 for x from -5 to 5",
    )
    [output] = conversation.outputs(run_id)
    assert "1 image(s) shown to the user" in output, output
    reply = conversation.reply(run_id)
    assert [p["type"] for p in reply["content"]] == ["image_file", "text"], reply
    text = reply["content"][1]["text"]["value"]
    assert text == f"Here is the plot.\n\n![image]({image_link(text)})"
    file_id = reply["content"][0]["image_file"]["file_id"]
    assert_links_to(image_link(text), server, file_id)

    png = conversation.download(file_id)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.width > 100 and image.height > 100
    # Not a blank canvas: the curve and the axes are drawn.
    assert len(image.convert("L").getcolors(maxcolors=100_000) or []) > 2

    answer = ok(Messages.list(conversation.thread_id)).data[0]
    assert [part.type for part in answer.content] == ["image_file", "text"]


def test_matplotlib_is_quiet(ds: str, server: RunningServer, fake_model: FakeModel) -> None:
    """A new kernel's first matplotlib import and a saved plot with text write nothing to
    stderr: no font configuration complaint reaches the model or the user."""
    code = PLOT.replace("plt.show()", "plt.savefig('plot.png')\nprint('saved')")
    _, (output,) = run_code(server, fake_model, code)
    assert output.startswith("stdout:\nsaved\n"), output
    assert "stderr" not in output and "Fontconfig" not in output, output


def test_a_file_attached_to_the_message_is_read_by_the_code(
    ds: str, server: RunningServer, fake_model: FakeModel, tmp_path: Path
) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("month,amount\njan,10\nfeb,32\n")
    file_id = upload(data)
    read = (
        "import csv\n"
        "rows = list(csv.DictReader(open('/mnt/data/sales.csv')))\n"
        "print(sum(int(r['amount']) for r in rows), len(rows))\n"
    )
    conversation = new_conversation(server, fake_model, code_call(read), Reply("The total is 42."))
    run_id = conversation.run("Sum the amounts in my file.", file_ids=[file_id])
    assert conversation.outputs(run_id) == ["stdout:\n42 2\n"]


def test_a_csv_written_by_the_code_is_returned_as_a_file(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    write = (
        "import csv\n"
        "with open('squares.csv', 'w', newline='') as f:\n"
        "    w = csv.writer(f)\n"
        "    w.writerow(['x', 'square'])\n"
        "    w.writerows([x, x * x] for x in range(5))\n"
    )
    conversation, run_id = converse(
        server, fake_model, code_call(write), Reply("Your CSV is attached.")
    )
    [output] = conversation.outputs(run_id)
    reply = conversation.reply(run_id)
    [file_id] = reply["file_ids"]
    assert f"squares.csv ({file_id})" in output, output
    assert [p["type"] for p in reply["content"]] == ["text"]

    content = conversation.download(file_id).decode()
    rows = list(csv.reader(io.StringIO(content)))
    assert rows == [["x", "square"], *([str(x), str(x * x)] for x in range(5))]
    with httpx.Client(base_url=server.dashscope_url, timeout=30) as client:
        meta = client.get(
            f"/files/{file_id}", headers={"Authorization": f"Bearer {dashscope.api_key}"}
        )
    assert meta.status_code == 200, meta.text
    assert "squares.csv" in meta.text

    # The SDK sees the file on the message too.
    answer = ok(Messages.list(conversation.thread_id)).data[0]
    assert answer.file_ids == [file_id]


def test_what_the_model_is_told(ds: str, server: RunningServer, fake_model: FakeModel) -> None:
    _, outputs = run_code(
        server,
        fake_model,
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7",
        "1 / 0",
        "print('x' * 20000)",
        "pass",
    )
    both, error, long, nothing = outputs
    assert both.index("stdout:\nout\n") < both.index("stderr:\nerr\n") < both.index("result:\n42")
    assert error.startswith("error:\n") and "ZeroDivisionError" in error, error
    assert "\x1b[" not in error  # no terminal colours
    assert long.endswith("[... output cut at 8000 characters]"), long[-200:]
    assert len(long) < 8100
    assert nothing == "The code ran and printed nothing."


def test_dashscope_rendering_of_the_calls(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    code = "print('hello from the sandbox')"
    conversation, run_id = converse(server, fake_model, code_call(code), Reply("Done."))

    [raw] = conversation.tool_calls(run_id)
    assert raw["type"] == "code_interpreter"
    assert raw["code_interpreter"] == {"input": code, "outputs": []}
    assert raw["output"] == "stdout:\nhello from the sandbox\n"

    # The SDK parses the list and the single step, and keeps the undeclared `output`.
    steps = ok(Steps.list(run_id, thread_id=conversation.thread_id)).data
    assert [s.type for s in steps] == ["message_creation", "tool_calls"]  # newest first
    call = steps[1].step_details.tool_calls[0]
    assert call.type == "code_interpreter"
    assert call.code_interpreter.input == code and call.code_interpreter.outputs == []
    assert call.output == raw["output"]
    step = ok(Steps.retrieve(steps[1].id, thread_id=conversation.thread_id, run_id=run_id))
    assert step.step_details.tool_calls[0].code_interpreter.outputs == []


def test_streamed_step_deltas_parse(ds: str, server: RunningServer, fake_model: FakeModel) -> None:
    code = "total = sum(range(10))\nprint(total)"
    conversation = new_conversation(server, fake_model, code_call(code), Reply("It is 45."))
    ok(Messages.create(conversation.thread_id, content="Sum 0..9"))
    events: list[tuple[str, Any]] = list(
        Runs.create(conversation.thread_id, assistant_id=conversation.assistant_id, stream=True)
    )
    names = [name for name, _ in events]
    assert names[-1] == "thread.run.completed", names
    deltas = [data for name, data in events if name == "thread.run.step.delta"]
    assert deltas
    streamed = ""
    for delta in deltas:
        [call] = delta.delta.step_details.tool_calls
        assert call.type == "code_interpreter" and call.code_interpreter.outputs == []
        streamed += call.code_interpreter.input
    # Fragments of the model's JSON arguments, which add up to them.
    assert json.loads(streamed) == {"code": code}
    completed = [
        data
        for name, data in events
        if name == "thread.run.step.completed" and data.type == "tool_calls"
    ]
    [step] = completed
    [call] = step.step_details.tool_calls
    assert call.code_interpreter.input == code and call.code_interpreter.outputs == []
    assert call.output == "stdout:\n45\n"


def test_kernels_are_not_shared_across_threads_or_workspaces(
    ds: str, server: RunningServer, fake_model: FakeModel, admin: httpx.Client
) -> None:
    secret = secrets.token_hex(8)
    set_it = (
        f"secret = {secret!r}\n"
        f"open('/mnt/data/{secret}.txt', 'w').write('mine')\n"
        "import os; print(os.listdir('/mnt/data'))"
    )
    look = (
        "import os\n"
        "print(globals().get('secret'), sorted(os.listdir('/mnt/data')), "
        "sorted(os.listdir('/tmp')))"
    )
    owner, outputs = run_code(server, fake_model, set_it)
    assert f"{secret}.txt" in outputs[0]
    # Another thread of the same workspace.
    _, (seen,) = run_code(server, fake_model, look)
    assert secret not in seen and seen.startswith("stdout:\nNone [] ["), seen
    # A thread of another workspace.
    saved = dashscope.api_key
    dashscope.api_key = make_workspace(admin, "other")[1]
    try:
        _, (seen,) = run_code(server, fake_model, look)
    finally:
        dashscope.api_key = saved
    assert secret not in seen and seen.startswith("stdout:\nNone [] ["), seen
    # The owner's kernel still has it.
    owner.fake_model.script(owner.model, code_call("print(secret)"), Reply("ok"))
    run_id = owner.run("again")
    assert owner.outputs(run_id) == [f"stdout:\n{secret}\n"]
