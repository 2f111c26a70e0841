"""What an operator meets first on the command line: --version, -h, the environment
variables in --help, clear one-line refusals (a port out of range, a mistyped or
file --data-dir), `workspace delete`, and the way back in when the admin key is lost."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import httpx
import pytest

from assistd import __version__
from tests.cli import test_cli as cli
from tests.cli.test_cli import (
    Fresh,
    assistd,
    create_key,
    fails,
    get,
    key_rows,
    succeeds,
    unique,
    workspace_rows,
)
from tests.support.server import RunningServer, free_port

fresh = cli.fresh  # the fixture: an empty database of each backend

COMMANDS = [
    [], ["serve"], ["migrate"], ["workspace"], ["workspace", "create"], ["workspace", "list"],
    ["workspace", "delete"], ["key"], ["key", "create"], ["key", "list"], ["key", "revoke"],
    ["plugin"], ["plugin", "add"], ["plugin", "list"], ["plugin", "remove"],
    ["kb"], ["kb", "create"], ["kb", "add"], ["kb", "list"], ["kb", "search"], ["kb", "delete"],
]  # fmt: skip


def test_version(tmp_path: Path) -> None:
    env = Fresh(tmp_path, "").env()
    assert succeeds("--version", env=env) == [f"assistd {__version__}"]


def test_dash_h_is_help_everywhere(tmp_path: Path) -> None:
    env = Fresh(tmp_path, "").env()
    assert succeeds("-h", env=env) == succeeds("--help", env=env)
    for command in COMMANDS:
        short = succeeds(*command, "-h", env=env)
        assert short[0].startswith(f"Usage: assistd {' '.join(command)}".rstrip()), short[0]
        assert any("-h, --help" in line for line in short), short
    assert list(tmp_path.iterdir()) == []


def _help(*command: str, env: dict[str, str]) -> str:
    """The command's --help, with click's line wrapping undone."""
    return re.sub(r"\s+", " ", " ".join(succeeds(*command, "--help", env=env)))


def test_help_names_the_environment_variables(tmp_path: Path) -> None:
    env = Fresh(tmp_path, "").env()
    serve_help = _help("serve", env=env)
    for name in ("ASSISTD_HOST", "ASSISTD_PORT", "ASSISTD_DATA_DIR", "ASSISTD_CONFIG"):
        assert f"env var: {name}" in serve_help, serve_help
    for command in ([], ["key", "list"], ["workspace", "create"]):
        shown = _help(*command, env=env)
        assert "env var: ASSISTD_DATA_DIR" in shown and "env var: ASSISTD_CONFIG" in shown


def test_assistd_config_names_the_settings_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-config"
    config = tmp_path / "assistd.toml"
    config.write_text(f'data_dir = "{data_dir}"\n')
    env = {**Fresh(tmp_path / "unused", "").env(), "ASSISTD_CONFIG": str(config)}
    del env["ASSISTD_DATA_DIR"]
    ws_id = succeeds("workspace", "create", "via-config", env=env)[0]
    assert (data_dir / "assistd.db").is_file()
    assert workspace_rows(env)["via-config"] == ws_id


def test_an_option_wins_over_the_environment(tmp_path: Path) -> None:
    """--data-dir over ASSISTD_DATA_DIR and --config over ASSISTD_CONFIG, whether the
    option comes before the command's name or after it."""
    dirs = {name: tmp_path / name for name in ("env", "option", "env-toml", "option-toml")}
    configs = {}
    for name in ("env-toml", "option-toml"):
        configs[name] = tmp_path / f"{name}.toml"
        configs[name].write_text(f'data_dir = "{dirs[name]}"\n')
    env = Fresh(dirs["env"], "").env()
    succeeds("--data-dir", str(dirs["option"]), "workspace", "create", "before", env=env)
    succeeds("workspace", "create", "after", "--data-dir", str(dirs["option"]), env=env)

    del env["ASSISTD_DATA_DIR"]
    env["ASSISTD_CONFIG"] = str(configs["env-toml"])
    option = ["--config", str(configs["option-toml"])]
    succeeds(*option, "workspace", "create", "before", env=env)
    succeeds("workspace", "create", "after", *option, env=env)

    for name in ("option", "option-toml"):
        listed = workspace_rows({**env, "ASSISTD_CONFIG": "", "ASSISTD_DATA_DIR": str(dirs[name])})
        assert {"before", "after"} <= listed.keys()
    assert not dirs["env"].exists() and not dirs["env-toml"].exists()


def test_the_way_back_in_when_the_admin_key_is_lost(tmp_path: Path) -> None:
    env = Fresh(tmp_path, "").env()
    hint = "assistd key create --workspace default --admin"
    assert hint in "\n".join(succeeds("key", "--help", env=env))


# ---- ports ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "value"),
    [("--port", "99999"), ("--port", "0"), ("ASSISTD_PORT", "99999"), ("port", "70000")],
)
def test_a_port_out_of_range_is_refused(tmp_path: Path, how: str, value: str) -> None:
    """Before: `--port 99999` printed ":99999" and listened on 34463."""
    env = Fresh(tmp_path / "data", "").env()
    args = ["serve"]
    if how == "--port":
        args += ["--port", value]
    elif how == "port":
        config = tmp_path / "assistd.toml"
        config.write_text(f"port = {value}\n")
        args += ["--config", str(config)]
    else:
        env[how] = value
    done = assistd(*args, env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    # A bad --port (or ASSISTD_PORT, which --port reads) gets click's usage hint first.
    message = done.stderr.splitlines()[-1]
    assert message.startswith("Error: ") and "port" in message.lower(), done.stderr
    assert "65535" in message, message
    assert not (tmp_path / "data").exists()


# ---- where there is no assistd data -----------------------------------------------------

READ_ONLY = [
    ["key", "list"], ["workspace", "list"], ["key", "revoke", "key_x"],
    ["workspace", "delete", "someone"],
]  # fmt: skip


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_mistyped_data_dir_is_not_created(tmp_path: Path, command: list[str]) -> None:
    """Before: `key list --data-dir typo` made an empty database there and listed nothing."""
    env = Fresh(tmp_path / "data", "").env()
    typo = tmp_path / "dta"
    message = fails(*command, "--data-dir", str(typo), env=env)
    assert len(message.splitlines()) == 1 and "no assistd data" in message
    assert str(typo) in message
    assert not typo.exists()


def _tables(url: str) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return [row[0] for row in rows]
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_list_commands_leave_an_empty_database_alone(fresh: Fresh, command: list[str]) -> None:
    message = fails(*command, env=fresh.env())
    assert len(message.splitlines()) == 1 and "no assistd data" in message
    if fresh.database_url:
        assert _tables(fresh.database_url) == []
        assert "postgresql" in message
    else:
        assert list(fresh.data_dir.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [*READ_ONLY, ["migrate"], ["workspace", "create", "w"], ["key", "create", "--workspace", "x"]],
    ids=" ".join,
)
def test_a_data_dir_that_is_a_file(tmp_path: Path, command: list[str]) -> None:
    """Before: a 57-line traceback."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("mine\n")
    env = Fresh(tmp_path / "data", "").env()
    message = fails(*command, "--data-dir", str(not_a_dir), env=env)
    assert len(message.splitlines()) == 1 and "is a file" in message, message
    assert not_a_dir.read_text() == "mine\n"


def test_serve_on_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("mine\n")
    env = {**Fresh(tmp_path / "data", "").env(), "ASSISTD_DATA_DIR": str(not_a_dir)}
    message = fails("serve", "--port", str(free_port()), env=env)
    assert len(message.splitlines()) == 1 and "is a file" in message, message


# ---- workspace delete -------------------------------------------------------------------


def test_workspace_delete(server: RunningServer, admin: httpx.Client) -> None:
    name = unique("gone")
    ws_id = succeeds("workspace", "create", name, env=server.env)[0]
    key = create_key(server.env, name)
    made = httpx.post(
        f"{server.dashscope_url}/assistants",
        json={"model": "m"},
        headers={"Authorization": f"Bearer {key.secret}"},
    )
    assert made.status_code == 200, made.text

    message = fails("workspace", "delete", name, env=server.env)
    assert "1 assistant" in message and "--force" in message
    assert get(server.base_url, "/api/v1/assistants", key.secret).status_code == 200

    assert succeeds("workspace", "delete", name, "--force", env=server.env) == [
        f"deleted workspace {ws_id} ({name})"
    ]
    assert name not in workspace_rows(server.env)
    assert key.id not in key_rows(server.env)
    assert get(server.base_url, "/api/v1/assistants", key.secret).status_code == 401
    assert name in fails("workspace", "delete", name, env=server.env)

    empty = unique("empty")
    empty_id = succeeds("workspace", "create", empty, env=server.env)[0]
    assert succeeds("workspace", "delete", empty_id, env=server.env) == [
        f"deleted workspace {empty_id} ({empty})"
    ]
    assert "default" in fails("workspace", "delete", "default", "--force", env=server.env)
    assert "default" in workspace_rows(server.env)


# ---- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--workspace", "default", "--name", "x" * 129], "name"),
        (["--workspace", "default", "--name", "bell\x07"], "name"),
        (["--workspace", "x" * 129], "workspace"),
    ],
)
def test_key_names_are_checked(server: RunningServer, flags: list[str], field: str) -> None:
    before = key_rows(server.env)
    message = fails("key", "create", *flags, env=server.env)
    assert re.search(rf"'{field}'", message) and len(message) < 200, message
    assert key_rows(server.env) == before


def test_key_list_shows_workspace_names(server: RunningServer) -> None:
    name = unique("named")
    ws_id = succeeds("workspace", "create", name, env=server.env)[0]
    key = create_key(server.env, ws_id, "--name", "deploy bot")
    row = key_rows(server.env)[key.id]
    assert row[1:3] == [name, ws_id] and row[-1] == "deploy bot"
    done = assistd("key", "list", env=server.env)
    assert done.stdout.splitlines()[0].split("\t")[:3] == ["ID", "WORKSPACE", "WORKSPACE_ID"]
