"""Helpers of the file_search tests: files to search, and a scripted model that searches
once, then answers citing the result of a file it names."""

from __future__ import annotations

import re
from typing import Any

import openai

from tests.support.fake_model import FakeModel, Reply, ToolCalls, Turn

PARIS = (
    "The Eiffel Tower in Paris is 330 metres tall. It was built by Gustave Eiffel's "
    "company for the 1889 World's Fair and was the tallest structure in the world until 1930."
)
ROME = (
    "The Colosseum in Rome is an oval amphitheatre built under the Flavian emperors. "
    "It could hold between 50,000 and 80,000 spectators for gladiator contests."
)
KYOTO = (
    "Kyoto was the capital of Japan for more than a thousand years. Its temples include "
    "Kinkaku-ji, the Golden Pavilion, covered in gold leaf."
)
SEARCH = {"type": "file_search"}
MARKER = re.compile(r"【\d+:\d+†([^】]*)】")


def upload(client: openai.OpenAI, name: str, text: str) -> str:
    return client.files.create(file=(name, text.encode()), purpose="assistants").id


def tool_message(body: dict[str, Any]) -> str | None:
    """The last tool result the model was sent, if any."""
    found = [m for m in body.get("messages", []) if m.get("role") == "tool"]
    return str(found[-1]["content"]) if found else None


def markers_of(output: str) -> dict[str, str]:
    """File name -> the first marker the tool output gives a result of that file."""
    found: dict[str, str] = {}
    for match in MARKER.finditer(output):
        found.setdefault(match.group(1), match.group(0))
    return found


def search_then_cite(
    fake_model: FakeModel, query: str, cite: str, extra: str = "", **arguments: Any
) -> str:
    """A model that calls file_search with `query`, then answers citing the marker the
    results gave the file named `cite` (and writes `extra` after it). Returns its name."""
    model = fake_model.new_model()

    def respond(body: dict[str, Any]) -> Turn:
        output = tool_message(body)
        if output is None:
            return ToolCalls([("file_search", {"queries": [query], **arguments})])
        marker = markers_of(output).get(cite, "")
        return Reply(f"The answer is in the files.{marker}{extra}")

    fake_model.respond(model, respond)
    return model
