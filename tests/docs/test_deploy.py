"""docs/deploy.md and the files of deploy/ name only settings, commands and options that
exist, and the compose file runs the shape the page describes."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from assistd.cli import main
from assistd.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deploy.md"
FILES = [PAGE, *sorted((ROOT / "deploy").rglob("*"))]
# Variables of the compose file's own, not assistd's.
NOT_SETTINGS = {"ASSISTD_CONFIG"}


def _texts() -> dict[Path, str]:
    return {path: path.read_text() for path in FILES if path.is_file()}


def test_every_assistd_variable_is_a_setting() -> None:
    known = {f"ASSISTD_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    for path, text in _texts().items():
        named = set(re.findall(r"\bASSISTD_[A-Z0-9_]+", text))
        assert named <= known, (path.name, sorted(named - known))


def test_every_setting_in_the_page_exists() -> None:
    rows = re.findall(r"^\| `([a-z_0-9]+)`", PAGE.read_text(), flags=re.M)
    assert "run_lease_s" in rows
    assert set(rows) <= set(Settings.model_fields), sorted(set(rows) - set(Settings.model_fields))


def _options(command: str) -> set[str]:
    found = main.commands[command]
    return {opt for param in found.params if isinstance(param, click.Option) for opt in param.opts}


def test_the_commands_and_options_used_exist() -> None:
    for path, text in _texts().items():
        for command, args in re.findall(r"assistd (serve|worker)\b([^\n`]*)", text):
            used = set(re.findall(r"--[a-z-]+", args))
            assert used <= _options(command), (path.name, command, sorted(used - _options(command)))


def test_the_compose_file_runs_api_replicas_and_workers() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("pgvector/")
    assert services["api"]["command"][:2] == ["serve", "--no-worker"]
    assert services["worker"]["command"][0] == "worker"
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["ASSISTD_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["ASSISTD_REDIS_URL"].startswith("redis://")
        assert "ASSISTD_SECRET_KEY" in env  # links made by a worker are checked by a replica
        command = services[name]["command"]
        used = {arg for arg in command if arg.startswith("--")}
        assert used <= _options(command[0]), (name, sorted(used - _options(command[0])))
    assert (ROOT / services["api"]["build"]["dockerfile"]).is_file()
