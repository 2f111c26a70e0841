"""Agency Swarm's getting-started example (its README, v0.7.2), as an application runs it:
the framework unmodified, the only change being where the SDK points (OPENAI_BASE_URL and
OPENAI_API_KEY, read by the openai SDK itself). Runs in the framework's own venv
(.venv/agency-swarm, see scripts/install.sh), never imported by the tests.

Usage: python agency_swarm_example.py CEO_MODEL DEVELOPER_MODEL {backend,stream}
`backend` is the README's "Backend version" (`get_completion`, runs polled); `stream` is
`get_completion_stream` with the event handler of the framework's streaming guide, which
records what it sees instead of printing it. The last line printed is JSON: the completion,
the ids of the agents' assistants and, when streaming, what the handler saw.
"""

import json
import sys
from pathlib import Path

from agency_swarm import Agency, AgencyEventHandler, Agent
from agency_swarm.tools import BaseTool
from pydantic import Field
from typing_extensions import override

SEEN: dict = {"texts": [], "tool_calls": [], "ended": False}


class EventHandler(AgencyEventHandler):
    @override
    def on_text_created(self, text) -> None:
        SEEN["texts"].append([self.recipient_agent_name, self.agent_name, ""])

    @override
    def on_text_delta(self, delta, snapshot):
        SEEN["texts"][-1][2] += delta.value

    def on_tool_call_created(self, tool_call):
        SEEN["tool_calls"].append([self.recipient_agent_name, tool_call.type])

    @classmethod
    def on_all_streams_end(cls):
        SEEN["ended"] = True


class MyCustomTool(BaseTool):
    """
    Writes a page of the client's website.
    """

    example_field: str = Field(..., description="The file name of the page to write.")

    def run(self):
        Path(self.example_field).write_text("<h1>Welcome</h1>\n")
        return f"Wrote {self.example_field}"


def main(ceo_model: str, developer_model: str, mode: str) -> None:
    ceo = Agent(
        name="CEO",
        description="Responsible for client communication, task planning and management.",
        instructions="You must converse with other agents to ensure complete task execution.",
        tools=[],
        temperature=0.3,
        max_prompt_tokens=25000,
        model=ceo_model,
    )
    dev = Agent(
        name="Developer",
        description="Writes the code of the client's websites.",
        instructions="You write websites with your tools.",
        tools=[MyCustomTool],
        model=developer_model,
    )
    agency = Agency(
        [ceo, [ceo, dev]],
        shared_instructions="You are an agency that builds websites.",
        temperature=0.3,
        max_prompt_tokens=25000,
    )
    if mode == "stream":
        completion_output = agency.get_completion_stream(
            "Please create a new website for our client.", event_handler=EventHandler
        )
    else:
        completion_output = agency.get_completion("Please create a new website for our client.")
    result = {"completion": completion_output, "assistants": [ceo.id, dev.id]}
    if mode == "stream":
        result["stream"] = SEEN
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
