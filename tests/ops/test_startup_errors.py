"""A mistyped setting gets a one-line answer from `assistd serve`: the file and key, the
variable or the option, and what is wrong with it; no traceback, a non-zero exit, and no
secret echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.conftest import clean_env, serve_refused
from tests.support.server import free_port

# (the TOML file's text, words the error names)
BAD_FILES = {
    "invalid TOML": ('host = "127.0.0.1"\nport = \n', ["invalid TOML", "line 2"]),
    "unknown key": ("portt = 8000\n", ["unknown key 'portt'", "did you mean 'port'"]),
    "unknown nested key": (
        '[models."qwen-max"]\nbase_urll = "http://127.0.0.1:9/v1"\n',
        ["unknown key 'models.qwen-max.base_urll'", "did you mean 'base_url'"],
    ),
    "wrong type": ('port = "abc"\n', ["'port'", "valid integer", "'abc'"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_config_file_is_named_with_its_key(case: str, tmp_path: Path) -> None:
    text, words = BAD_FILES[case]
    config = tmp_path / "assistd.toml"
    config.write_text(text)
    env = clean_env(ASSISTD_DATA_DIR=str(tmp_path / "data"))
    message = serve_refused(env, "--config", str(config))
    assert message.startswith(f"Error: {config}: "), message
    for word in words:
        assert word in message, (word, message)
    assert not (tmp_path / "data").exists()


def test_a_bad_environment_variable_is_named(tmp_path: Path) -> None:
    env = clean_env(ASSISTD_DATA_DIR=str(tmp_path / "data"), ASSISTD_PORT="abc")
    message = serve_refused(env)
    assert message.startswith("Error: ASSISTD_PORT: "), message
    assert "valid integer" in message and "'abc'" in message, message


def test_an_unknown_database_driver_is_named_without_the_password(tmp_path: Path) -> None:
    url = "mysql://assistd:db-secret-pw@127.0.0.1/assistd"
    env = clean_env(ASSISTD_DATA_DIR=str(tmp_path / "data"), ASSISTD_DATABASE_URL=url)
    message = serve_refused(env)
    assert message.startswith("Error: ASSISTD_DATABASE_URL: "), message
    assert "unknown database driver 'mysql'" in message, message
    assert "postgresql+asyncpg://" in message and "db-secret-pw" not in message, message


def test_unreachable_postgresql_is_named_without_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://assistd:db-secret-pw@127.0.0.1:{port}/assistd"
    env = clean_env(ASSISTD_DATA_DIR=str(tmp_path / "data"), ASSISTD_DATABASE_URL=url)
    message = serve_refused(env, "--port", str(free_port()))
    assert "cannot connect to PostgreSQL at" in message, message
    assert f"postgresql+asyncpg://assistd:***@127.0.0.1:{port}/assistd" in message, message
    assert "connection refused" in message and "db-secret-pw" not in message, message


def test_admin_commands_name_unreachable_postgresql_too(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://assistd:db-secret-pw@127.0.0.1:{free_port()}/assistd"
    done = subprocess.run(
        [sys.executable, "-m", "assistd", "key", "list"],
        env=clean_env(ASSISTD_DATABASE_URL=url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("Error: cannot connect to PostgreSQL at "), done.stderr
    assert "db-secret-pw" not in done.stderr
