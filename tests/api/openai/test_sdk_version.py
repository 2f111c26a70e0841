"""The SDK matrix is what it claims: each pass of the OpenAI-surface tests imports the
`openai` major version it was started for (ASSISTD_TEST_OPENAI_SDK, see scripts/test.sh),
and that SDK's own requirements are met by what the test process imports beside it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import openai
from packaging.requirements import Requirement

from tests.conftest import OPENAI_SDK_MAJOR
from tests.support import openai_sdk


def test_the_pass_imports_the_sdk_it_names() -> None:
    major = OPENAI_SDK_MAJOR
    imported_from = Path(openai.__file__).resolve()
    assert int(openai.__version__.split(".")[0]) == major, (openai.__version__, imported_from)
    assert metadata.version("openai") == openai.__version__  # its own metadata, not another's
    if major == openai_sdk.DEFAULT_MAJOR:
        extra_dirs = [openai_sdk.sdk_dir(m).resolve() for m in openai_sdk.EXTRA_MAJORS]
        assert not any(imported_from.is_relative_to(d) for d in extra_dirs), imported_from
    else:
        assert openai.__version__ == openai_sdk.pinned_version(major)
        assert imported_from.is_relative_to(openai_sdk.sdk_dir(major).resolve()), imported_from


def test_the_sdk_requirements_are_met() -> None:
    """1.x and 2.x are installed without their dependencies: they borrow the venv's."""
    unmet = []
    for text in metadata.requires("openai") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{req} (missing)")
            continue
        if not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{req} (have {version})")
    assert unmet == [], f"openai {openai.__version__} needs {unmet}"
