"""docs/configuration.md lists every setting with its environment name and its real
default, and its TOML example loads: the reference cannot drift from assistd/settings.py."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from assistd.settings import (
    ContentFilterSettings,
    EmbedderSettings,
    GitHubSettings,
    ImageSettings,
    ModelRoute,
    OutboundSettings,
    PluginAuthSettings,
    PluginSettings,
    RerankerSettings,
    SearchSettings,
    Settings,
    load_settings,
)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
# Where each class's fields sit in the page's "TOML key" column.
SECTIONS: list[tuple[type[BaseModel], str]] = [
    (Settings, "{}"),
    (ModelRoute, "models.<name>.{}"),
    (PluginSettings, "plugins.<id>.{}"),
    (PluginAuthSettings, "plugins.<id>.auth.{}"),
    (OutboundSettings, "outbound.{}"),
    (ContentFilterSettings, "content_filter.{}"),
    (SearchSettings, "search.{}"),
    (ImageSettings, "image.{}"),
    (GitHubSettings, "github.{}"),
    (EmbedderSettings, "embedders.<name>.{}"),
    (RerankerSettings, "reranker.{}"),
]


def documented_rows() -> dict[str, list[str]]:
    """TOML key -> the row's cells: environment, type, default, meaning."""
    rows: dict[str, list[str]] = {}
    for line in PAGE.read_text().splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def canonical(value: Any) -> str:
    """How the page writes a default: as TOML would, `unset` for none."""
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "{}"  # a table whose own keys have their rows
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{}" if not value else repr(value)
    return str(value)


def expected_rows() -> dict[str, tuple[str, str]]:
    """TOML key -> (environment name, default) for every field of the settings classes."""
    expected: dict[str, tuple[str, str]] = {}
    for model, key_format in SECTIONS:
        for name, field in model.model_fields.items():
            env = f"ASSISTD_{name.upper()}" if model is Settings else "—"
            default = canonical(field.get_default(call_default_factory=True))
            expected[key_format.format(field.alias or name)] = (env, default)
    return expected


def test_every_setting_is_documented() -> None:
    documented, expected = documented_rows(), expected_rows()
    missing = [key for key in expected if key not in documented]
    skeletons = "\n".join(
        f"| `{key}` | {_code(expected[key][0])} | TYPE | `{expected[key][1]}` | MEANING |"
        for key in missing
    )
    assert not missing, (
        f"docs/configuration.md does not document these settings: {', '.join(missing)}.\n"
        f"Add a row for each (in the section where it belongs):\n{skeletons}"
    )
    stale = [key for key in documented if key not in expected]
    assert not stale, f"docs/configuration.md documents settings that do not exist: {stale}"


def _code(text: str) -> str:
    return text if text == "—" else f"`{text}`"


def test_environment_names_and_defaults_are_the_real_ones() -> None:
    documented, wrong = documented_rows(), []
    for key, (env, default) in expected_rows().items():
        if key not in documented:
            continue  # reported by the test above
        env_cell, _type, default_cell, _meaning = documented[key]
        shown = re.match(r"`([^`]*)`", default_cell)
        if env_cell != _code(env):
            wrong.append(f"{key}: environment {env_cell!r}, should be {_code(env)!r}")
        if shown is None or shown.group(1) != default:
            wrong.append(f"{key}: default {default_cell!r}, should start with `{default}`")
    assert not wrong, "docs/configuration.md is wrong about:\n" + "\n".join(wrong)


def test_the_example_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ASSISTD_")]:
        monkeypatch.delenv(name)
    (example,) = re.findall(r"```toml\n(.*?)```", PAGE.read_text(), flags=re.S)
    config = tmp_path / "assistd.toml"
    config.write_text(example)
    settings = load_settings(config)
    assert settings.models["qwen-max"].upstream_model == "Qwen/Qwen2.5-7B-Instruct"
    assert settings.models["*"].backend == "local"
    assert settings.code_wall_s == 60
    assert "weather" in settings.plugins
