"""docs/operations.md's backup recipes, run as written against a live server: the backup
taken while the server writes holds the newest writes, and restoring it by the page's
steps gives a server that serves them."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer, run_server

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def block(language: str, containing: str) -> str:
    (found,) = [
        b
        for b in re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.S)
        if containing in b
    ]
    return found


def at(text: str, server: RunningServer, backup: Path) -> str:
    """The page's paths swapped for the test server's database and the backup's path."""
    database = str(server.data_dir / "assistd.db")
    return text.replace("assistd-data/assistd.db", database).replace(
        "assistd-backup.db", str(backup)
    )


def create_assistant(server: RunningServer, name: str) -> None:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    body = {"model": "qwen-max", "name": name}
    answer = httpx.post(f"{server.dashscope_url}/assistants", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def names_in(backup: Path) -> list[str]:
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [row[0] for row in db.execute("SELECT name FROM assistants")]


def restore_and_list(backup: Path, data_dir: Path) -> list[str]:
    """The page's restore: the backup becomes assistd.db of a data dir; start and read."""
    data_dir.mkdir()
    shutil.copy(backup, data_dir / "assistd.db")
    with run_server(data_dir) as restored:
        headers = {"Authorization": f"Bearer {restored.admin_key}"}
        listed = httpx.get(f"{restored.dashscope_url}/assistants", headers=headers)
    assert listed.status_code == 200, listed.text
    return [a["name"] for a in listed.json()["data"]]


def test_the_python_backup_of_a_live_server_restores(tmp_path: Path) -> None:
    script = block("python", "backup(")
    backup = tmp_path / "backup.db"
    with run_server(tmp_path / "live") as server:
        create_assistant(server, "kept-by-the-backup")
        done = subprocess.run(
            [sys.executable, "-c", at(script, server, backup)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        create_assistant(server, "made-after-the-backup")
    assert names_in(backup) == ["kept-by-the-backup"]
    assert restore_and_list(backup, tmp_path / "restored") == ["kept-by-the-backup"]


def test_the_sqlite3_command_backs_up_a_live_server(tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("no sqlite3 command on this machine (Debian's sqlite3 package)")
    command = block("sh", ".backup")
    backup = tmp_path / "backup.db"
    with run_server(tmp_path / "live") as server:
        create_assistant(server, "kept-by-the-cli-backup")
        done = subprocess.run(
            at(command, server, backup), shell=True, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    assert names_in(backup) == ["kept-by-the-cli-backup"]


def _needs(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"no {program} on this machine to check the page's configuration with")
    return path


def test_the_nginx_configuration_is_valid(tmp_path: Path) -> None:
    nginx = _needs("nginx")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=assistd.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = block("nginx", "proxy_pass")
    server = server.replace("/etc/letsencrypt/live/assistd.example.com/fullchain.pem", str(cert))
    server = server.replace("/etc/letsencrypt/live/assistd.example.com/privkey.pem", str(key))
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off;\n{server}}}\n"
    )
    done = subprocess.run([nginx, "-t", "-c", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_caddyfile_is_valid(tmp_path: Path) -> None:
    caddy = _needs("caddy")
    config = tmp_path / "Caddyfile"
    config.write_text(block("caddyfile", "reverse_proxy"))
    done = subprocess.run([caddy, "adapt", "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert '"max_size":105906176' in done.stdout  # 101 MiB: one 100 MiB file and its framing


def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    analyze = _needs("systemd-analyze")
    unit = block("ini", "ExecStart=")
    unit = unit.replace("/opt/assistd/.venv/bin/assistd", shutil.which("true") or "/bin/true")
    path = tmp_path / "assistd.service"
    path.write_text(unit)
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
