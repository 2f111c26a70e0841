"""A thread's kernel over time: stopped once idle for code_idle_s (and the next call is
told its state is gone), and no kernel at all where no sandbox can start: the tool
refuses to run code and says why, never running it unsandboxed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer, run_server
from tests.tools.helpers import code_call, converse, healthy, sdk_on

LOST = "variables from earlier calls are gone"


@pytest.fixture(scope="module")
def quick_reaper(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("idle")
    with (
        run_server(
            data_dir, "", ASSISTD_OPENAI_BASE_URL=fake_model.base_url, ASSISTD_CODE_IDLE_S="1"
        ) as server,
        sdk_on(server),
    ):
        yield server


def _wait_gone(path: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while path.exists():
        assert time.monotonic() < deadline, f"{path} is still there"
        time.sleep(0.2)


def test_an_idle_kernel_is_stopped_and_the_next_call_says_so(
    quick_reaper: RunningServer, fake_model: FakeModel
) -> None:
    where = "import glob\nx = 5\nprint(glob.glob('/tmp/assistd-kernel-*'))"
    conversation, first = converse(
        quick_reaper,
        fake_model,
        code_call(where),
        Reply("Set."),
        code_call("print(x)"),
        Reply("It is gone."),
    )
    [output] = conversation.outputs(first)
    # The kernel's control directory, which the host removes when the kernel stops.
    found = re.findall(r"'(/tmp/assistd-kernel-[^']+)'", output)
    assert len(found) == 1, output
    _wait_gone(Path(found[0]))

    second = conversation.run("And now?")
    [after] = conversation.outputs(second)
    assert LOST in after, after
    assert "NameError" in after, after
    assert healthy(quick_reaper)


@pytest.fixture(scope="module")
def without_prlimit(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """A server whose PATH has no `prlimit`, so no limits could be put on a sandbox."""
    data_dir = tmp_path_factory.mktemp("no-prlimit")
    empty = data_dir / "empty-path"
    empty.mkdir()
    with (
        run_server(
            data_dir, "", ASSISTD_OPENAI_BASE_URL=fake_model.base_url, PATH=str(empty)
        ) as server,
        sdk_on(server),
    ):
        yield server


def test_no_sandbox_no_code(without_prlimit: RunningServer, fake_model: FakeModel) -> None:
    marker = without_prlimit.data_dir / "ran-unsandboxed"
    conversation, run_id = converse(
        without_prlimit,
        fake_model,
        code_call(f"open({str(marker)!r}, 'w').write('oops')\nprint('ran')"),
        Reply("I could not run code."),
    )
    [output] = conversation.outputs(run_id)
    assert output.startswith("The code was not run: the code interpreter is unavailable"), output
    assert "prlimit" in output, output
    assert not marker.exists()
    assert conversation.told_model() == [output]
    reply = conversation.reply(run_id)
    assert reply["content"][-1]["text"]["value"] == "I could not run code."


@pytest.fixture(scope="module")
def without_bwrap(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """A server told to use a bubblewrap binary that does not exist."""
    data_dir = tmp_path_factory.mktemp("no-bwrap")
    with (
        run_server(
            data_dir,
            "",
            ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
            ASSISTD_CODE_BWRAP=str(data_dir / "no-such-bwrap"),
        ) as server,
        sdk_on(server),
    ):
        yield server


def test_no_bubblewrap_no_code(without_bwrap: RunningServer, fake_model: FakeModel) -> None:
    marker = without_bwrap.data_dir / "ran-unsandboxed"
    conversation, run_id = converse(
        without_bwrap,
        fake_model,
        code_call(f"open({str(marker)!r}, 'w').write('oops')"),
        Reply("I could not run code."),
    )
    [output] = conversation.outputs(run_id)
    assert output.startswith("The code was not run: the code interpreter is unavailable"), output
    assert "no bubblewrap binary" in output, output
    assert not marker.exists()


@pytest.fixture(scope="module")
def one_kernel(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("one-kernel")
    with (
        run_server(
            data_dir, "", ASSISTD_OPENAI_BASE_URL=fake_model.base_url, ASSISTD_CODE_MAX_KERNELS="1"
        ) as server,
        sdk_on(server),
    ):
        yield server


def test_a_kernel_evicted_for_room_is_reported_lost(
    one_kernel: RunningServer, fake_model: FakeModel
) -> None:
    first, _ = converse(
        one_kernel, fake_model, code_call("x = 5"), Reply("Set."), code_call("print(x)"), Reply("?")
    )
    # Another thread takes the only kernel.
    other, run_id = converse(one_kernel, fake_model, code_call("print('other')"), Reply("ok"))
    assert other.outputs(run_id) == ["stdout:\nother\n"]
    again = first.run("And x?")
    [after] = first.outputs(again)
    assert LOST in after and "NameError" in after, after
