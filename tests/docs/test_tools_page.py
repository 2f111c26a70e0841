"""docs/tools.md's configuration examples load as written: each TOML block is a valid
assistd configuration file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistd.settings import load_settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tools.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_an_example_per_image_provider() -> None:
    providers = {m for block in BLOCKS for m in re.findall(r'provider = "(\w+)"', block)}
    assert {"wanx", "openai", "a1111"} <= providers


@pytest.mark.parametrize("block", BLOCKS)
def test_each_example_loads(block: str, tmp_path: Path) -> None:
    config = tmp_path / "assistd.toml"
    config.write_text(block)
    settings = load_settings(config)
    if "[image]" in block:
        assert settings.image is not None
