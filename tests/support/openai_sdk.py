"""Which `openai` SDK the test process imports: the OpenAI-surface tests run once per
supported major version (scripts/test.sh), chosen by ASSISTD_TEST_OPENAI_SDK (1, 2 or 3).
3.x is the venv's own; 1.x and 2.x are installed by `scripts/install.sh dev` with
`--no-deps --target .venv/openai-N` (pins in requirements/openai-N.txt) and put first on
sys.path for the whole test process, while the server under test keeps importing the
venv's SDK (a subprocess, its sys.path untouched; ASSISTD_* variables are not passed on).

An environment variable, not a pytest option: pytest imports the conftest.py files along
the given paths (tests/api/openai/conftest.py imports openai) before any option is read."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAJOR = 3  # the venv's SDK: pyproject.toml requires openai>=3
EXTRA_MAJORS = (1, 2)  # each installed beside the venv, one directory per major
ENV = "ASSISTD_TEST_OPENAI_SDK"


def sdk_dir(major: int) -> Path:
    return ROOT / ".venv" / f"openai-{major}"


def requirements_file(major: int) -> Path:
    return ROOT / "requirements" / f"openai-{major}.txt"


def pinned_version(major: int) -> str:
    """The openai version requirements/openai-N.txt pins."""
    for line in requirements_file(major).read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip() == "openai":
            return version.strip()
    raise ValueError(f"{requirements_file(major)} pins no openai version")


def use_sdk(major: int) -> Path:
    """Puts the N.x SDK first on sys.path. Must run before anything imports `openai`."""
    if "openai" in sys.modules:
        raise RuntimeError("openai is already imported; the SDK can no longer be switched")
    path = sdk_dir(major)
    if not (path / "openai").is_dir():
        raise FileNotFoundError(f"{path} holds no openai SDK; run `scripts/install.sh dev`")
    sys.path.insert(0, str(path))
    return path


def select_from_env() -> int:
    """The major version ASSISTD_TEST_OPENAI_SDK asks for, its SDK put first on sys.path."""
    text = os.environ.get(ENV, str(DEFAULT_MAJOR))
    allowed = [str(m) for m in (*EXTRA_MAJORS, DEFAULT_MAJOR)]
    if text not in allowed:
        raise ValueError(f"{ENV}={text!r}: expected one of {', '.join(allowed)}")
    major = int(text)
    if major != DEFAULT_MAJOR:
        use_sdk(major)
    return major
