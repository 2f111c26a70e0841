"""`calculator`: answers through the real SDK with the scripted model calling it, and the
evaluator's refusals, each a clear output while the run goes on."""

from __future__ import annotations

import math

import pytest
from dashscope import Messages, Steps

from assistd.tools.builtin.calculator import MAX_EXPRESSION, Calculator
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer
from tests.tools.helpers import converse, healthy, ok

CALCULATOR = [{"type": "calculator"}]


def _calc(*expressions: str) -> ToolCalls:
    return ToolCalls([("calculator", {"expression": e}) for e in expressions])


def test_a_calculation_through_the_sdk(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation, run_id = converse(
        server,
        fake_model,
        _calc("2**10 + sqrt(16) * 3"),
        Reply("It is 1036."),
        tools=CALCULATOR,
        question="What is 2^10 + 3 * sqrt(16)?",
    )
    [call] = conversation.tool_calls(run_id)
    assert call["type"] == "calculator"
    assert call["calculator"]["input"] == '{"expression": "2**10 + sqrt(16) * 3"}'
    assert call["calculator"]["output"] == "1036.0"
    assert conversation.told_model() == ["1036.0"]

    # The SDK parses the steps (a built-in it does not know stays a plain dict).
    steps = ok(Steps.list(run_id, thread_id=conversation.thread_id)).data
    tool_step = next(s for s in steps if s.type == "tool_calls")
    assert tool_step.status == "completed"
    assert tool_step.step_details.tool_calls[0]["calculator"]["output"] == "1036.0"
    answer = ok(Messages.list(conversation.thread_id)).data[0]
    assert answer.content[0].text.value == "It is 1036."


REFUSALS = {
    "().__class__": "not allowed",
    "(1).__class__.__bases__[0].__subclasses__()": "not allowed",
    "__import__('os').system('true')": "'__import__' not defined",
    "import os": "not allowed",
    "open('/etc/passwd').read()": "'open' not defined",
    "9**9**9": "too large",
    "pow(9, 9**9)": "too large",
    "comb(10**6, 5 * 10**5)": "limited",
    "perm(10**7, 10**6)": "limited",
    "factorial(10**5)": "limited",
    "10**4300": "more than 4300 digits",
    "1" * (MAX_EXPRESSION + 1): "longer than",
    "1/0": "ZeroDivisionError",
    "x + 1": "'x' is not defined",
    "'abc' * 3": "not a number",
}


def test_refusals_are_clear_outputs_and_the_run_completes(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation, run_id = converse(
        server,
        fake_model,
        _calc(*REFUSALS),
        Reply("Some of those cannot be computed."),
        tools=CALCULATOR,
    )
    outputs = conversation.outputs(run_id)
    assert len(outputs) == len(REFUSALS)
    for (expression, words), output in zip(REFUSALS.items(), outputs, strict=True):
        assert output.startswith("Error:") and words in output, (expression, output)
        assert len(output) < 400, (expression, output)
    assert conversation.told_model() == outputs
    assert healthy(server)


# ---- the evaluator itself ---------------------------------------------------------


@pytest.fixture(scope="module")
def calculator() -> Calculator:
    return Calculator()


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7),
        ("2**100", 2**100),
        ("factorial(20)", math.factorial(20)),
        ("comb(52, 5)", 2598960),
        ("pow(2, 10)", 1024),
        ("pow(3, 100, 7)", pow(3, 100, 7)),
        ("round(pi, 4)", 3.1416),
        ("10**4299 // 10**4298", 10),
        ("max(3, 7, 5) - min(2, 1)", 6),
        ("log10(1000)", 3.0),
    ],
)
def test_values(calculator: Calculator, expression: str, value: object) -> None:
    assert calculator.evaluate(expression) == repr(value)


@pytest.mark.parametrize("expression", list(REFUSALS))
def test_refusals(calculator: Calculator, expression: str) -> None:
    assert REFUSALS[expression] in calculator.evaluate(expression)
