"""`assistd plugin add|list|remove` next to the running server, on its data dir or its
PostgreSQL database: what the CLI registers the API sees at once, tokens are never
printed, and mistakes are one clear line."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import yaml

from tests.api.dashscope.test_plugins import WEATHER
from tests.cli.test_cli import assistd, create_key, fails, succeeds, unique
from tests.support.server import RunningServer

HEADER = ["ID", "KIND", "AUTH", "DESCRIPTION"]


def plugin_rows(env: dict[str, str], workspace: str) -> dict[str, list[str]]:
    header, *rows = [
        line.split("\t") for line in succeeds("plugin", "list", "--workspace", workspace, env=env)
    ]
    assert header == HEADER
    assert all(len(row) == len(HEADER) for row in rows), rows
    return {row[0]: row for row in rows}


def api_get(server: RunningServer, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.dashscope_url}{path}", headers={"Authorization": f"Bearer {key}"})


def test_add_list_remove_against_the_running_server(server: RunningServer, tmp_path: Path) -> None:
    name = unique("plugins")
    succeeds("workspace", "create", name, env=server.env)
    key = create_key(server.env, name)
    token = "cli-token-" + secrets.token_hex(8)
    doc = tmp_path / "weather-api.yaml"
    doc.write_text(yaml.safe_dump(WEATHER))
    env = {**server.env, "WEATHER_TOKEN": token}
    added = succeeds(
        "plugin", "add", "--workspace", name, "--openapi", str(doc), "--description", "Weather.",
        "--auth-type", "service", "--auth-name", "X-Api-Key", "--auth-token-env", "WEATHER_TOKEN",
        env=env,
    )  # fmt: skip
    assert added == [f"registered plugin weather_api (openapi) in workspace {key.workspace_id}"]
    as_json = tmp_path / "forecast.json"
    as_json.write_text(json.dumps(WEATHER))
    succeeds("plugin", "add", "--workspace", name, "--openapi", str(as_json), "--id", "fc",
             env=server.env)  # fmt: skip
    succeeds("plugin", "add", "--workspace", key.workspace_id, "--mcp-url",
             "https://mcp.example.com/mcp", "--id", "tickets", "--header",
             f"Authorization=Bearer {token}", env=server.env)  # fmt: skip

    rows = plugin_rows(server.env, name)
    assert rows["weather_api"] == ["weather_api", "openapi", "service (token stored)", "Weather."]
    assert rows["fc"] == ["fc", "openapi", "none", ""]
    assert rows["tickets"] == ["tickets", "mcp", "headers", ""]
    listing = assistd("plugin", "list", "--workspace", name, env=server.env)
    assert token not in listing.stdout + listing.stderr

    # The running server sees them at once; the token it holds is the one given.
    seen = api_get(server, key.secret, "/plugins/weather_api")
    assert seen.status_code == 200, seen.text
    assert seen.json()["auth"] == {
        "type": "service", "in": "header", "name": "X-Api-Key", "scheme": "raw",
        "has_token": True,
    }  # fmt: skip
    assert token not in seen.text
    made = httpx.post(
        f"{server.dashscope_url}/assistants",
        json={"model": "qwen-max", "tools": [{"type": "weather_api"}, {"type": "tickets"}]},
        headers={"Authorization": f"Bearer {key.secret}"},
    )
    assert made.status_code == 200, made.text

    assert succeeds("plugin", "remove", "--workspace", name, "fc", env=server.env) == [
        f"removed plugin fc from workspace {key.workspace_id}"
    ]
    assert "fc" not in plugin_rows(server.env, name)
    assert api_get(server, key.secret, "/plugins/fc").status_code == 404


def test_mistakes_are_one_clear_line(server: RunningServer, tmp_path: Path) -> None:
    name = unique("plugin-errors")
    succeeds("workspace", "create", name, env=server.env)
    good, bad = tmp_path / "good.json", tmp_path / "bad.yaml"
    good.write_text(json.dumps(WEATHER))
    bad.write_text("openapi: 3.0.0\ninfo: {title: x}\n")
    add = ("plugin", "add", "--workspace", name)
    assert "openapi" in fails(*add, "--openapi", str(bad), env=server.env)
    assert "--openapi" in fails(*add, env=server.env)
    both = fails(*add, "--openapi", str(good), "--mcp-url", "https://e.com/", env=server.env)
    assert "--openapi" in both and "--mcp-url" in both
    assert "--id" in fails(*add, "--mcp-url", "https://e.com/mcp", env=server.env)
    assert "built-in" in fails(*add, "--openapi", str(good), "--id", "wanx", env=server.env)
    assert "auth.token" in fails(*add, "--openapi", str(good), "--auth-type", "service",
                                 env=server.env)  # fmt: skip
    missing_var = fails(*add, "--openapi", str(good), "--auth-token-env", "NO_SUCH_VAR_X",
                        env=server.env)  # fmt: skip
    assert "NO_SUCH_VAR_X" in missing_var
    succeeds(*add, "--openapi", str(good), env=server.env)
    assert "already has a plugin 'good'" in fails(*add, "--openapi", str(good), env=server.env)
    assert "no_such_ws" in fails("plugin", "list", "--workspace", "no_such_ws", env=server.env)
    gone = fails("plugin", "remove", "--workspace", name, "nothing_here", env=server.env)
    assert "nothing_here" in gone
    assert list(plugin_rows(server.env, name)) == ["good"]


def test_a_token_from_standard_input(server: RunningServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    name = unique("plugin-stdin")
    succeeds("workspace", "create", name, env=server.env)
    key = create_key(server.env, name)
    doc = tmp_path / "api.json"
    doc.write_text(json.dumps(WEATHER))
    token = "stdin-token-" + secrets.token_hex(8)
    done = subprocess.run(
        [sys.executable, "-m", "assistd", "plugin", "add", "--workspace", name, "--openapi",
         str(doc), "--auth-type", "service", "--auth-token", "-"],
        input=token + "\n", env=server.env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    seen = api_get(server, key.secret, "/plugins/api").json()
    assert seen["auth"]["has_token"] is True and seen["auth"]["scheme"] == "bearer"
