"""Kept statements (store/prepared.py) run on SQLite's driver, past SQLAlchemy's execution.

Each is compiled once, by SQLAlchemy for SQLite, for the parameter names it is called with
(an INSERT's columns are those given); what SQLAlchemy would do on every execution is
worked out then too: the order of the parameters, their conversions (JSON to text) and
the columns' (text to JSON, integers to booleans). A statement that needs more than that
(a Python-side column default, a list rendered anew per execution, RETURNING) runs
through SQLAlchemy as before. Errors come out as SQLAlchemy's, as they did.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlean
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler

Convert = Callable[[Any], Any]


class _Plan:
    """One kept statement, compiled for one set of parameter names."""

    __slots__ = ("binds", "compiled", "given", "names", "reads", "row", "sql")

    def __init__(
        self, compiled: SQLCompiler, keys: tuple[str, ...], row: type[tuple[Any, ...]] | None
    ) -> None:
        self.compiled = compiled
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # Every parameter comes from the caller's (none is a value the statement holds, as
        # a LIMIT's is): taken as they are, without SQLAlchemy's construct_params.
        self.given = not compiled.escaped_bind_names and set(self.names) <= set(keys)
        processors: Mapping[str, Any] = compiled._bind_processors
        self.binds = tuple(processors.get(name) for name in self.names)
        self.row = row
        self.reads: tuple[Convert | None, ...] | None = None  # None: every column as it comes
        if row is not None:
            dialect = compiled.dialect
            columns = compiled._result_columns
            reads = tuple(c.type._cached_result_processor(dialect, None) for c in columns)
            self.reads = reads if any(reads) else None

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        values = parameters if self.given else self.compiled.construct_params(parameters)
        return [
            value if bind is None else bind(value)
            for bind, value in zip(self.binds, (values[name] for name in self.names), strict=True)
        ]

    def rows(self, fetched: list[Any]) -> list[Any]:
        assert self.row is not None
        make, reads = self.row, self.reads
        if reads is None:
            return [tuple.__new__(make, r) for r in fetched]
        pairs = (zip(reads, r, strict=True) for r in fetched)
        return [tuple.__new__(make, [v if f is None else f(v) for f, v in row]) for row in pairs]


def _row_type(names: list[str]) -> type[tuple[Any, ...]] | None:
    """A row class answering `row.<column>` and `row._mapping`, as SQLAlchemy's Row does."""
    try:
        base = namedtuple("Row", names)  # type: ignore[misc]
    except ValueError:  # a name no attribute can have: SQLAlchemy's rows then
        return None
    mapping = property(lambda self: dict(zip(self._fields, self, strict=True)))
    return type("Row", (base,), {"__slots__": (), "_mapping": mapping})


def _plan(statement: Any, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    if (
        not compiled.positional
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.effective_returning
        or compiled.literal_execute_params
        or compiled.post_compile_params
    ):
        return None
    if compiled.isinsert or compiled.isupdate or compiled.isdelete:
        return _Plan(compiled, keys, None)
    row = _row_type([c.keyname for c in compiled._result_columns])
    return _Plan(compiled, keys, row) if row is not None else None


_plans: dict[tuple[int, tuple[str, ...]], _Plan | None] = {}


def plan_for(statement: Any, many: list[Any], dialect: Dialect) -> _Plan | None:
    """The plan for a kept statement and the parameter names of `many` (one set of
    parameters, or an INSERT's rows, each with the same names), or None: SQLAlchemy's."""
    first = many[0]
    if not isinstance(first, dict):
        return None
    key = (id(statement), tuple(first))
    if len(many) > 1 and any(tuple(values) != key[1] for values in many):
        return None
    try:
        found = _plans[key]
    except KeyError:
        found = _plans[key] = _plan(statement, key[1], dialect)
    if found is not None and len(many) > 1 and found.row is not None:
        return None  # rows of several executions: never asked of a kept statement
    return found


def execute(driver: Any, plan: _Plan, many: list[Any], dialect: Dialect) -> Result:
    """Runs `plan` once, or (an INSERT's rows) once for each set of parameters."""
    arguments = [plan.arguments(values) for values in many]
    try:
        if len(arguments) > 1:
            cursor = driver.executemany(plan.sql, arguments)
        else:
            cursor = driver.execute(plan.sql, arguments[0])
        fetched = cursor.fetchall() if plan.row is not None else None
    except sqlean.Error as exc:
        raise DBAPIError.instance(
            plan.sql, arguments, exc, sqlean.Error, hide_parameters=True, dialect=dialect
        ) from exc
    if fetched is None:
        return Result([], cursor.rowcount)
    return Result(plan.rows(fetched), -1)


class Result:
    """What callers use of SQLAlchemy's result, over rows already fetched."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return list(self._rows)

    fetchall = all

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self.first()

    def one(self) -> Any:
        row = self.one_or_none()
        if row is None:
            raise NoResultFound("No row was found when one was required")
        return row

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> Result:
        """Each row's first value (`all`, `first` and iteration give values, not rows)."""
        return Result([row[0] for row in self._rows], self.rowcount)
