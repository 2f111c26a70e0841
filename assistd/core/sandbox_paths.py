"""Files the code interpreter wrote, as a reply names them (`sandbox:/mnt/data/<path>`,
see SANDBOX_FILES_URL): each such path in a reply's text becomes a `file_path`
annotation naming the saved file."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from assistd.core.objects import JsonDict
from assistd.tools.base import SANDBOX_FILES_URL

_PATH = re.compile(re.escape(SANDBOX_FILES_URL) + r"[^\s()\[\]\"'<>`]+")


def file_path_annotations(text: str, files: dict[str, str]) -> list[JsonDict]:
    """An annotation for each sandbox path in `text` that names one of `files` (file
    name -> file id), with its character offsets."""
    found: list[JsonDict] = []
    for match in _PATH.finditer(text):
        path = match.group().rstrip(".,;:!?")
        file_id = files.get(PurePosixPath(path).name)
        if file_id is None:
            continue
        found.append({
            "type": "file_path", "text": path, "start_index": match.start(),
            "end_index": match.start() + len(path), "file_path": {"file_id": file_id},
        })  # fmt: skip
    return found
