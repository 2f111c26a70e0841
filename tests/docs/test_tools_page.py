"""docs/tools.md: every TOML example of the search and GitHub providers loads as written
(with the keys it reads from the environment set), and configures what it says."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from assistd.settings import load_settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tools.md"


def provider_blocks() -> list[str]:
    blocks = re.findall(r"```toml\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [b for b in blocks if b.startswith(("[search]", "[github]"))]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ASSISTD_")]:
        monkeypatch.delenv(name)
    for name in ("BRAVE_API_KEY", "TAVILY_API_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, f"{name.lower()}-value")


@pytest.mark.usefixtures("clean_env")
def test_every_provider_example_loads(tmp_path: Path) -> None:
    blocks = provider_blocks()
    loaded = []
    for block in blocks:
        config = tmp_path / "assistd.toml"
        config.write_text(block)
        settings = load_settings(config)
        if block.startswith("[search]"):
            assert settings.search is not None and settings.search.provider in block
            if settings.search.provider != "searxng":
                assert settings.search.key() is not None, block
            loaded.append(settings.search.provider)
        else:
            assert settings.github is not None and settings.github.key() == "github_token-value"
            loaded.append("github")
    assert loaded == ["searxng", "brave", "tavily", "github"]


# assistd configuration files; a package's pyproject.toml snippet is not one.
BLOCKS = [
    block
    for block in re.findall(r"```toml\n(.*?)```", PAGE.read_text(), flags=re.S)
    if not block.startswith("[project")
]


def test_the_page_has_an_example_per_image_provider() -> None:
    providers = {m for block in BLOCKS for m in re.findall(r'provider = "(\w+)"', block)}
    assert {"wanx", "openai", "a1111"} <= providers


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("block", BLOCKS)
def test_each_example_loads(block: str, tmp_path: Path) -> None:
    config = tmp_path / "assistd.toml"
    config.write_text(block)
    settings = load_settings(config)
    if "[image]" in block:
        assert settings.image is not None
