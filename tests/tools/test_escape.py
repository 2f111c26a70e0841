"""The escape suite: code that tries to leave the code interpreter's sandbox, or to hurt
its host, through the real SDK with the scripted model sending the code. Each attempt must
fail safely with a clear tool output, and the host must stay unharmed: the server answers,
the files probed from inside are untouched, and a new run works afterwards.

One dedicated server with small limits (3 s a call, 512 MiB, 16 MiB of disk, 32
processes) on SQLite, so the sandbox has a database file on the host to look for. The
sandbox does not depend on the storage backend, so one backend is enough here.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer, run_server
from tests.tools.helpers import code_call, converse, healthy, run_code, sdk_on

MIB = 1024 * 1024
WALL_S = 3
LIMITS = {
    "ASSISTD_CODE_WALL_S": str(WALL_S),
    "ASSISTD_CODE_MEMORY_BYTES": str(512 * MIB),
    "ASSISTD_CODE_DISK_BYTES": str(16 * MIB),
    "ASSISTD_CODE_PROCESSES": "32",
}
STOPPED = f"The code was stopped after {WALL_S} s"
DIED = "The kernel died"
LOST = "variables from earlier calls are gone"
as_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="not safe yet: without root the sandbox has no uid of its own, so there is no "
    "process limit (RLIMIT_NPROC would count the server's own processes)",
)


@pytest.fixture(scope="module")
def sandboxed(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("escape")
    with run_server(data_dir, "", ASSISTD_OPENAI_BASE_URL=fake_model.base_url, **LIMITS) as server:
        yield server


@pytest.fixture
def escape(sandboxed: RunningServer) -> Iterator[RunningServer]:
    """The SDK pointed at the dedicated server (a new workspace each test); afterwards
    the server must still answer and carry out a new run."""
    with sdk_on(sandboxed):
        yield sandboxed
        assert healthy(sandboxed)


def _still_serving(server: RunningServer, fake_model: FakeModel) -> None:
    """The server is healthy and a new thread's code runs."""
    assert healthy(server)
    _, (output,) = run_code(server, fake_model, "print(6 * 7)")
    assert output == "stdout:\n42\n"


def _server_pid(server: RunningServer) -> int:
    port = server.base_url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and b"--port" in argv and port.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no server process on port {port}")


def _stat(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_mode


# ---- network --------------------------------------------------------------------


def test_no_network_at_all(escape: RunningServer, fake_model: FakeModel) -> None:
    server_port = int(escape.base_url.rsplit(":", 1)[1])
    model_port = int(fake_model.base_url.split(":")[2].split("/")[0])
    code = f"""
import socket
def attempt(host, port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(2)
    try:
        if kind == socket.SOCK_DGRAM:
            s.sendto(b"x", (host, port))
            return "SENT"
        s.connect((host, port))
        return "CONNECTED"
    except OSError as e:
        return f"{{type(e).__name__}} errno={{e.errno}}"
    finally:
        s.close()
for host, port in [("127.0.0.1", {server_port}), ("127.0.0.1", 5432),
                   ("127.0.0.1", {model_port}), ("1.1.1.1", 53), ("1.1.1.1", 443)]:
    print(host, port, attempt(host, port))
print("udp 1.1.1.1 53", attempt("1.1.1.1", 53, socket.SOCK_DGRAM))
try:
    socket.getaddrinfo("example.org", 80)
    print("dns RESOLVED")
except OSError as e:
    print("dns", type(e).__name__)
print("interfaces", sorted(name for _, name in socket.if_nameindex()))
"""
    _, (output,) = run_code(escape, fake_model, code)
    assert "CONNECTED" not in output and "SENT" not in output and "RESOLVED" not in output
    # Loopback is the sandbox's own, where nothing listens: the server's port is refused.
    for port in (server_port, 5432, model_port):
        assert f"127.0.0.1 {port} ConnectionRefusedError errno=111" in output, output
    # No route out at all: the connect attempts never leave the empty network namespace.
    assert "1.1.1.1 53 OSError errno=101" in output, output  # ENETUNREACH
    assert "1.1.1.1 443 OSError errno=101" in output, output
    assert "udp 1.1.1.1 53 OSError errno=101" in output, output
    assert "dns gaierror" in output, output
    assert "interfaces ['lo']" in output, output


# ---- reading the host's files -------------------------------------------------------


def test_host_files_are_out_of_sight(escape: RunningServer, fake_model: FakeModel) -> None:
    database = escape.data_dir / "assistd.db"
    assert database.is_file()
    shadow_before = _stat("/etc/shadow")
    probes = [
        "/etc/shadow",
        "/etc/passwd",
        str(database),
        str(escape.data_dir),
        str(Path(__file__).resolve()),  # the project's source tree
        "/proc/1/environ",  # the sandbox's init, owned by root
        "/proc/1/root/etc/shadow",
    ]
    code = f"""
import os
for path in {probes!r}:
    try:
        if os.path.isdir(path):
            print(path, "LISTED", os.listdir(path))
        else:
            with open(path, "rb") as f:
                print(path, "READ", len(f.read()))
    except OSError as e:
        print(path, type(e).__name__)
try:
    open({str(database)!r}, "ab").write(b"garbage")
    print("db WRITTEN")
except OSError as e:
    print("db write", type(e).__name__)
print("root", sorted(os.listdir("/")))
print("etc", [os.path.join(d, f) for d, _, fs in os.walk("/etc") for f in fs])
"""
    _, (output,) = run_code(escape, fake_model, code)
    assert "READ" not in output and "LISTED" not in output and "WRITTEN" not in output, output
    for path in probes:
        pattern = rf"^{re.escape(path)} (FileNotFoundError|PermissionError)$"
        assert re.search(pattern, output, re.M), (path, output)
    assert "db write FileNotFoundError" in output
    # No /home, no /var: only the runtime, /proc, /dev, /tmp and /mnt/data; and in /etc
    # only the sandbox's own font configuration.
    listed = re.search(r"^root (.*)$", output, re.M)
    assert listed is not None
    assert "'home'" not in listed.group(1) and "'var'" not in listed.group(1), listed.group(1)
    assert "\netc ['/etc/fonts/fonts.conf']\n" in output, output
    assert _stat("/etc/shadow") == shadow_before
    _still_serving(escape, fake_model)


def test_another_threads_working_directory_is_out_of_sight(
    escape: RunningServer, fake_model: FakeModel
) -> None:
    token = secrets.token_hex(8)
    plant = (
        f"open('/mnt/data/marker-{token}.txt', 'w').write('{token}')\n"
        f"open('/tmp/marker-{token}.txt', 'w').write('{token}')\n"
        "print('planted')"
    )
    owner, (planted,) = run_code(escape, fake_model, plant)
    assert planted.startswith("stdout:\nplanted\n"), planted
    search = f"""
import os, sys
# Everything but /proc and the read-only runtime (where nothing can be written).
skip = {{"/proc", "/sys", "/usr", "/lib", "/lib64", "/bin", "/sbin", sys.prefix, sys.base_prefix}}
# Its own files by the same name, which the search must find (and nothing else).
open("/mnt/data/own-{token}", "w").close()
open("/tmp/own-{token}", "w").close()
found = []
for d, dirs, files in os.walk("/"):
    dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
    found += [os.path.join(d, f) for f in files if {token!r} in f]
print("found", sorted(found))
print("processes", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
"""
    _, (seen,) = run_code(escape, fake_model, search)
    assert f"found ['/mnt/data/own-{token}', '/tmp/own-{token}']" in seen, seen
    # Only the sandbox's own init, kernel and whatever the kernel started are visible.
    processes = re.search(r"processes \[(.*)\]", seen)
    assert processes is not None and processes.group(1).startswith("1, 2"), seen
    assert _server_pid(escape) not in [int(p) for p in processes.group(1).split(", ")]
    # The owner still sees its own files.
    owner.fake_model.script(
        owner.model, code_call(f"print(open('/mnt/data/marker-{token}.txt').read())"), Reply("ok")
    )
    assert owner.outputs(owner.run("again")) == [f"stdout:\n{token}\n"]


# ---- writing outside the working directory ----------------------------------------------


def test_writing_outside_the_working_directory(
    escape: RunningServer, fake_model: FakeModel
) -> None:
    token = secrets.token_hex(8)
    name = f"escape-{token}"
    venv_site = next(p for p in sys.path if p.endswith("site-packages"))
    targets = [
        f"/usr/{name}",
        f"/usr/local/{name}",
        f"/usr/lib/{name}",
        f"/work/{name}",
        f"{Path.cwd()}/{name}",
        f"{sys.prefix}/{name}",
        f"{venv_site}/{name}.pth",
        f"{venv_site}/assistd/{name}.py",
        f"{sys.base_prefix}/{name}",
        f"/root/{name}",
        f"/etc/{name}",
        f"/{name}",
        f"/dev/{name}",
        f"/dev/shm/{name}",
        f"/proc/{name}",
    ]
    code = f"""
import glob, os
targets = {targets!r}
targets += [os.path.join(d, {name!r}) for d in glob.glob("/tmp/assistd-kernel-*")]
for path in targets:
    try:
        with open(path, "w") as f:
            f.write("escaped")
        print(path, "WROTE")
    except OSError as e:
        print(path, type(e).__name__, e.errno)
for path in ("/usr/bin/python3", "/tmp"):
    try:
        os.chmod(path, 0o777)
        print("chmod", path, "DONE")
    except OSError as e:
        print("chmod", path, type(e).__name__)
with open("/tmp/{name}", "w") as f:
    f.write("inside")
print("own tmp ok")
"""
    _, (output,) = run_code(escape, fake_model, code)
    assert "WROTE" not in output, output
    assert "chmod /usr/bin/python3 DONE" not in output, output
    assert "own tmp ok" in output
    written = re.findall(r"^(/\S+) (\w+Error) (\d+)$", output, re.M)
    assert len(written) >= len(targets) + 1, output  # and the kernel's control directory
    for path, error, errno in written:
        # EROFS, EACCES/EPERM or ENOENT: never written.
        assert (error, errno) in {
            ("OSError", "30"),
            ("PermissionError", "13"),
            ("PermissionError", "1"),
            ("FileNotFoundError", "2"),
        }, (path, error, errno)
    for path, _, _ in written:
        assert not os.path.exists(path), path
    # The sandbox's /tmp is its own.
    assert not os.path.exists(f"/tmp/{name}")
    _still_serving(escape, fake_model)


# ---- limits ---------------------------------------------------------------------------


@as_root
def test_fork_bomb_hits_the_process_limit(escape: RunningServer, fake_model: FakeModel) -> None:
    count = """
import os, signal, time
children = []
try:
    for _ in range(10_000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as e:
    print("fork refused after", len(children), "children:", type(e).__name__, e.errno)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"""
    bomb = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    _, (counted, bombed, after) = run_code(escape, fake_model, count, bomb, "print('alive')")
    refused = re.search(r"fork refused after (\d+) children: BlockingIOError 11", counted)
    assert refused is not None, counted
    assert int(refused.group(1)) < 32
    # The bomb runs until the time limit; the whole sandbox goes with it.
    assert STOPPED in bombed and DIED in bombed, bombed
    assert LOST in after and after.endswith("stdout:\nalive\n"), after
    _still_serving(escape, fake_model)


def test_memory_past_the_limit(escape: RunningServer, fake_model: FakeModel) -> None:
    grow = """
chunks = []
while True:
    chunks.append(bytearray(16 * 1024 * 1024))
"""
    _, (at_once, growing, numpy, after) = run_code(
        escape,
        fake_model,
        "kept = 'still here'\nblob = bytearray(2 * 1024**3)",
        grow,
        "del chunks\nimport numpy as np\nnp.ones(2**31)",
        "print(kept)",
    )
    assert "MemoryError" in at_once, at_once
    # MemoryError, or else the kernel died and says so.
    assert "MemoryError" in growing or DIED in growing, growing
    assert "MemoryError" in numpy or DIED in numpy, numpy
    assert after.endswith("stdout:\nstill here\n") or LOST in after, after
    _still_serving(escape, fake_model)


def test_time_limit(escape: RunningServer, fake_model: FakeModel) -> None:
    stubborn = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
"""
    _, (looped, after_loop, slept, ignored, after_kill) = run_code(
        escape,
        fake_model,
        "x = 7\nwhile True:\n    pass",
        "print(x)",
        "import time\ntime.sleep(600)",
        stubborn,
        "print(globals().get('x'))",
    )
    # Interrupted: reported, and the kernel (with its state) is still there.
    assert STOPPED in looped and "KeyboardInterrupt" in looped, looped
    assert after_loop == "stdout:\n7\n", after_loop
    assert STOPPED in slept, slept
    # Code that ignores the interrupt loses its kernel, which is restarted.
    assert STOPPED in ignored and DIED in ignored, ignored
    assert LOST in after_kill and after_kill.endswith("stdout:\nNone\n"), after_kill
    _still_serving(escape, fake_model)


def test_disk_quota(escape: RunningServer, fake_model: FakeModel) -> None:
    fill = """
import os, shutil
def fill(path):
    try:
        with open(path, "wb") as f:
            for _ in range(64):
                f.write(b"x" * 1024 * 1024)
        return "FITS"
    except OSError as e:
        return f"{type(e).__name__} errno={e.errno}"
    finally:
        if os.path.exists(path):
            os.remove(path)
def many(d):
    os.makedirs(d, exist_ok=True)
    try:
        for i in range(100_000):
            with open(f"{d}/{i}", "wb") as f:
                f.write(b"x" * 4096)
        return "FITS"
    except OSError as e:
        return f"{type(e).__name__} errno={e.errno}"
    finally:
        shutil.rmtree(d)
print("big /mnt/data", fill("/mnt/data/big"))
print("big /tmp", fill("/tmp/big"))
print("many /mnt/data", many("/mnt/data/many"))
print("many /tmp", many("/tmp/many"))
for path in ("/mnt/data", "/tmp"):
    st = os.statvfs(path)
    print("size", path, st.f_blocks * st.f_frsize)
"""
    _, (output,) = run_code(escape, fake_model, fill)
    assert "FITS" not in output, output
    for where in ("big /mnt/data", "big /tmp", "many /mnt/data", "many /tmp"):
        # ENOSPC (the tmpfs is full) or EFBIG (the file size limit).
        assert re.search(rf"^{where} OSError errno=(28|27)$", output, re.M), (where, output)
    for size in re.findall(r"^size \S+ (\d+)$", output, re.M):
        assert int(size) <= 16 * MIB
    _still_serving(escape, fake_model)


def test_killing_the_parent_and_the_server(escape: RunningServer, fake_model: FakeModel) -> None:
    server_pid = _server_pid(escape)
    kill = f"""
import os, signal
for name, pid in [("init", 1), ("parent", os.getppid()), ("server", {server_pid})]:
    try:
        os.kill(pid, signal.SIGKILL)
        print(name, "SIGNALLED")
    except OSError as e:
        print(name, type(e).__name__)
"""
    _, (killed, everyone, after) = run_code(
        escape, fake_model, kill, "import os, signal\nos.kill(-1, signal.SIGKILL)", "print('back')"
    )
    assert "init PermissionError" in killed, killed
    assert "parent PermissionError" in killed, killed
    # The server's pid does not exist in the sandbox's PID namespace.
    assert "server ProcessLookupError" in killed or "server PermissionError" in killed, killed
    # kill(-1) reaches only the sandbox's own processes (none but the caller and its
    # init, which it spares): nothing to kill, or the kernel dies and comes back.
    assert "ProcessLookupError" in everyone or DIED in everyone, everyone
    assert after.endswith("stdout:\nback\n"), after
    os.kill(server_pid, 0)  # still there
    assert _server_pid(escape) == server_pid
    _still_serving(escape, fake_model)


def test_the_kernel_ending_itself_is_reported_and_restarted(
    escape: RunningServer, fake_model: FakeModel
) -> None:
    conversation, run_id = converse(
        escape,
        fake_model,
        code_call("x = 1\nimport os\nos._exit(3)"),
        code_call("print(globals().get('x'))"),
        Reply("The kernel restarted."),
    )
    ended, after = conversation.outputs(run_id)
    assert DIED in ended, ended
    assert LOST in after and after.endswith("stdout:\nNone\n"), after


def test_floods_of_output_images_and_files_are_capped(
    escape: RunningServer, fake_model: FakeModel
) -> None:
    """Code that prints, shows or writes without end fills neither the server's memory
    nor its file store: what comes back is capped."""
    images = """
import io
from IPython.display import Image, display
from PIL import Image as Picture
buffer = io.BytesIO()
Picture.new("RGB", (8, 8), "red").save(buffer, "PNG")
for _ in range(100):
    display(Image(buffer.getvalue()))
"""
    files = "for i in range(100):\n    open(f'/mnt/data/f{i:03}.txt', 'w').write(str(i))"
    conversation, run_id = converse(
        escape,
        fake_model,
        code_call(images),
        code_call(files),
        code_call("while True:\n    print('x' * 100_000, flush=True)"),
        Reply("Done."),
    )
    shown, written, printed = conversation.outputs(run_id)
    assert "[... output cut at 8000 characters]" in printed, printed
    # Stopped at the time limit, or the kernel ran out of memory queueing the output:
    # either way the model is told, after the cut.
    assert STOPPED in printed or DIED in printed, printed[-500:]
    assert len(printed) < 8300
    assert "20 image(s) shown to the user" in shown, shown
    assert written.count(".txt (file") == 20, written
    reply = conversation.reply(run_id)
    parts = [p["type"] for p in reply["content"]]
    assert parts == ["image_file"] * 20 + ["text"], parts
    assert len(reply["file_ids"]) == 20
    _still_serving(escape, fake_model)


@as_root
def test_processes_left_behind_are_ended_after_the_call(
    escape: RunningServer, fake_model: FakeModel
) -> None:
    """A call that forks up to the process cap and returns, its children still running:
    they are ended with the call, so the next call of the same kernel can start threads
    again, and the kernel's state survives."""
    bomb = """
import os, time
kept = 41
forked = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                time.sleep(60)
        forked += 1
except OSError as e:
    print("forked", forked, "then", type(e).__name__)
"""
    after = """
import threading
worker = threading.Thread(target=lambda: None)
worker.start()
worker.join()
print("thread ran, kept", kept)
"""
    _, (bombed, then) = run_code(escape, fake_model, bomb, after)
    assert "then BlockingIOError" in bombed, bombed
    assert then == "stdout:\nthread ran, kept 41\n", then
    _still_serving(escape, fake_model)
