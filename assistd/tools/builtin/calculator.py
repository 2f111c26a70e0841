"""`calculator`: arithmetic and common math functions, evaluated safely by simpleeval.

Evaluation runs in the tool registry's compute pool, never on the event loop: within
the limits below an expression can still take many seconds (a product of 80 powers
9999**9999), and only that call may wait for it.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, ClassVar

import simpleeval

from assistd.tools.base import JsonDict, ToolContext, ToolResult

if TYPE_CHECKING:  # not imported at run time: the compute workers import this module
    from assistd.settings import Settings

MAX_EXPRESSION = 1000
MAX_POWER = 10_000  # exponents beyond this are refused: 9**9**9 would never finish
MAX_DIGITS = 4300  # Python's own limit for turning an int into text

_FUNCTIONS: dict[str, Any] = {
    name: getattr(math, name)
    for name in (
        "sqrt", "exp", "log", "log2", "log10", "sin", "cos", "tan", "asin", "acos", "atan",
        "atan2", "sinh", "cosh", "tanh", "floor", "ceil", "factorial", "gcd", "lcm", "hypot",
        "degrees", "radians", "isqrt", "comb", "perm",
    )
}  # fmt: skip
_FUNCTIONS.update(abs=abs, round=round, min=min, max=max, int=int, float=float)
_NAMES = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


MAX_COMBINATORIAL = 10_000  # comb/perm of larger n take minutes (and block the server)


def _safe_factorial(n: Any) -> int:
    if not isinstance(n, int) or n > 1000:
        raise ValueError("factorial is limited to integers up to 1000")
    return math.factorial(n)


def _safe_pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    """pow() under the same limits as `**`."""
    if modulus is None:
        return simpleeval.safe_power(base, exponent)
    if abs(base) > MAX_POWER or abs(exponent) > MAX_POWER:
        raise simpleeval.NumberTooHigh("pow() arguments too large")
    return pow(base, exponent, modulus)


def _bounded(function: Any) -> Any:
    def call(n: Any, *rest: Any) -> Any:
        if isinstance(n, int) and n > MAX_COMBINATORIAL:
            raise ValueError(f"{function.__name__} is limited to n up to {MAX_COMBINATORIAL}")
        return function(n, *rest)

    return call


class Calculator:
    name = "calculator"
    description = "Evaluates an arithmetic expression, e.g. '2**10 + sqrt(16) * pi'."
    parameters: ClassVar[JsonDict] = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "The expression."}},
        "required": ["expression"],
    }

    def __init__(self) -> None:
        functions = {
            **_FUNCTIONS,
            "factorial": _safe_factorial,
            "pow": _safe_pow,
            "comb": _bounded(math.comb),
            "perm": _bounded(math.perm),
        }
        self.evaluator = simpleeval.SimpleEval(functions=functions, names=_NAMES)
        simpleeval.MAX_POWER = MAX_POWER

    def evaluate(self, expression: str) -> str:
        if len(expression) > MAX_EXPRESSION:
            return f"Error: the expression is longer than {MAX_EXPRESSION} characters."
        try:
            value = self.evaluator.eval(expression)
        except simpleeval.NumberTooHigh:
            return f"Error: the numbers get too large (exponents are limited to {MAX_POWER})."
        except (simpleeval.FeatureNotAvailable, simpleeval.AttributeDoesNotExist) as exc:
            return f"Error: not allowed in a calculation: {exc}. Use arithmetic and math only."
        except (simpleeval.NameNotDefined, simpleeval.FunctionNotDefined) as exc:
            return f"Error: {exc}."
        except (
            ArithmeticError,
            ValueError,
            TypeError,
            SyntaxError,
            simpleeval.InvalidExpression,
        ) as exc:
            return f"Error: {type(exc).__name__}: {exc}."
        return _as_text(value)

    async def run(self, args: JsonDict, context: ToolContext) -> ToolResult:
        expression = str(args.get("expression", ""))
        return ToolResult(output=await context.require_compute().call(evaluate, expression))

    async def close(self) -> None:
        return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
        return f"Error: the result is not a number ({type(value).__name__})."
    try:
        return repr(value)
    except ValueError:  # an int of more than MAX_DIGITS digits
        return f"Error: the result has more than {MAX_DIGITS} digits."


@functools.cache
def _worker_calculator() -> Calculator:
    return Calculator()


def evaluate(expression: str) -> str:
    """The result, or an error the model can read: what a compute worker runs."""
    return _worker_calculator().evaluate(expression)


def factory(settings: Settings) -> Calculator:
    return Calculator()
