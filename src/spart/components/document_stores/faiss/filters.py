"""Haystack filters compiled to a SQL ``WHERE`` clause over the ``documents`` table.

``id`` and ``content`` are columns; ``meta.<a>.<b>`` reads the JSON metadata with
``json_extract(meta, '$."a"."b"')``, written inline (not as a bound parameter) so that an expression index on
the same field (see :func:`meta_index_sql`) serves equality, ``in`` and numeric range filters.

Semantics are Haystack's (``haystack.utils.filters.document_matches_filter``). The common cases compile to
plain SQL: ``==``/``!=``/``in``/``not in`` against ``None``, booleans, numbers and strings that are not ISO
dates, and ``>``/``>=``/``<``/``<=`` against numbers. Everything else (ISO dates, list or dict values,
``datetime`` objects, the ``embedding``/``blob``/``sparse_embedding``/``score``/whole-``meta`` fields, meta keys
that cannot be spelled as a JSON path) is evaluated row by row by a SQL function, ``spart_match``, that calls
Haystack's own comparison functions; it cannot use an index. One deliberate difference: a numeric range
filter skips documents whose value is not a number, where Haystack raises ``FilterError`` on the first one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haystack.errors import FilterError
from haystack.utils.filters import COMPARISON_OPERATORS, LOGICAL_OPERATORS

from spart.components.document_stores.faiss import converters

_COLUMNS = {"id", "content"}
_HEAVY = {"embedding", "blob", "sparse_embedding", "score", "meta"}  # Document fields with no plain SQL form
_DOCUMENT_FIELDS = _COLUMNS | _HEAVY
_ORDERING = {">": ">", ">=": ">=", "<": "<", "<=": "<="}
_NUMBER_TYPES = "('integer', 'real', 'true', 'false')"
UDF_NAME = "spart_match"


@dataclass
class CompiledFilter:
    """A compiled filter: ``WHERE`` text, its parameters, and the conditions ``spart_match`` evaluates."""

    where: str
    params: list[Any] = field(default_factory=list)
    row_conditions: list[tuple[str, Any, tuple[str, ...]]] = field(default_factory=list)


def compile_filters(filters: dict[str, Any] | None) -> CompiledFilter:
    """Compile Haystack ``filters`` (``None``/empty: everything) to SQL.

    :raises FilterError: On a malformed filter (missing keys, unknown operators, a non-list ``in`` value, a
        list or non-date string for ``>``/``<``), as Haystack's in-memory store does.
    """
    compiled = CompiledFilter(where="1")
    if filters:
        if not isinstance(filters, dict):
            raise FilterError(f"filters must be a dict, got {type(filters).__name__}")
        compiled.where = _Compiler(compiled).node(filters)
    return compiled


def meta_field_path(name: str) -> str:
    """The JSON path literal used for a meta field (``"meta.a.b"`` or ``"a.b"`` -> ``'$."a"."b"'``).

    :raises ValueError: If a key contains a double quote (no JSON path can name it).
    """
    parts = name.split(".")
    if parts[0] == "meta":
        parts = parts[1:]
    if not parts or any(not p or '"' in p for p in parts):
        raise ValueError(f"meta field {name!r} cannot be indexed: empty key or a key containing '\"'")
    return _sql_literal("$" + "".join(f'."{p}"' for p in parts))


def meta_index_sql(name: str) -> tuple[str, str]:
    """(index name, ``CREATE INDEX`` statement) of the expression index for meta field ``name``."""
    path = meta_field_path(name)
    index = "meta_" + "".join(c if c.isalnum() else "_" for c in name.removeprefix("meta."))
    return index, f"CREATE INDEX IF NOT EXISTS {index} ON documents (json_extract(meta, {path}))"


def install_udf(conn: sqlite3.Connection, state: dict[str, Any]) -> None:
    """Register ``spart_match`` on ``conn``; ``state["conditions"]`` holds the running query's row conditions.

    A ``FilterError`` raised inside is kept in ``state["error"]`` (SQLite only reports that a function failed);
    :func:`run` re-raises it.
    """

    def spart_match(index: int, kind: str, raw: Any) -> int:
        op, value, path = state["conditions"][index]
        try:
            return int(
                bool(
                    COMPARISON_OPERATORS[op](
                        value=_decode(kind, raw, path), filter_value=value, strict_datetime_comparison=False
                    )
                )
            )
        except Exception as exc:  # noqa: BLE001 - handed back to the caller by run()
            state["error"] = exc
            raise

    conn.create_function(UDF_NAME, 3, spart_match, deterministic=True)


def run(
    conn: sqlite3.Connection | sqlite3.Cursor,
    state: dict[str, Any],
    compiled: CompiledFilter,
    sql: Callable[[str], str] | str,
    extra_params: tuple = (),
) -> sqlite3.Cursor:
    """Execute ``sql`` (with ``{where}`` filled in) and surface a ``FilterError`` raised by ``spart_match``."""
    text = sql.format(where=compiled.where) if isinstance(sql, str) else sql(compiled.where)
    state["conditions"], state["error"] = compiled.row_conditions, None
    try:
        return conn.execute(text, [*compiled.params, *extra_params])
    except sqlite3.OperationalError as exc:
        _reraise(state, exc)


def fetch(cursor: sqlite3.Cursor, state: dict[str, Any], size: int | None = None) -> list[tuple]:
    """``fetchall()`` (or ``fetchmany(size)``), re-raising a ``FilterError`` from ``spart_match`` (rows are lazy)."""
    try:
        return cursor.fetchall() if size is None else cursor.fetchmany(size)
    except sqlite3.OperationalError as exc:
        _reraise(state, exc)


def _reraise(state: dict[str, Any], exc: sqlite3.OperationalError):
    """Raise the error ``spart_match`` kept (as a ``FilterError``) instead of SQLite's generic one."""
    error = state.get("error")
    if error is None:
        raise exc
    raise (error if isinstance(error, FilterError) else FilterError(str(error))) from exc


# ---------------------------------------------------------------------------------------------- internals
def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _decode(kind: str, raw: Any, path: tuple[str, ...]) -> Any:
    if kind == "meta":
        value: Any = json.loads(raw)
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value
    if kind == "embedding":
        emb = converters.blob_to_embedding(raw)
        return None if emb is None else emb.tolist()
    if kind == "sparse_embedding":
        return converters.sparse_from_column(raw)
    if kind == "none":
        return None
    return raw  # id / content


def _looks_like_iso_date(value: Any) -> bool:
    """Haystack's cheap test for strings that ``==`` compares as dates (``YYYY-MM-DD`` then end, T or space)."""
    return (
        isinstance(value, str)
        and len(value) >= 10
        and value[:4].isdigit()
        and value[4] == "-"
        and value[5:7].isdigit()
        and value[7] == "-"
        and value[8:10].isdigit()
        and (len(value) == 10 or value[10] in "Tt ")
    )


def _plain(value: Any) -> bool:
    """Values whose Haystack equality is SQL equality."""
    if isinstance(value, str):
        return not _looks_like_iso_date(value)
    return value is None or isinstance(value, (bool, int, float))


class _Compiler:
    def __init__(self, compiled: CompiledFilter):
        self.out = compiled

    # ---------------------------------------------------------------- structure
    def node(self, condition: Any) -> str:
        if not isinstance(condition, dict):
            raise FilterError(f"a filter condition must be a dict, got {type(condition).__name__}")
        if "field" in condition:
            return self.comparison(condition)
        if "operator" not in condition:
            raise FilterError(f"'operator' key missing in {condition}")
        if "conditions" not in condition:
            raise FilterError(f"'conditions' key missing in {condition}")
        operator = condition["operator"]
        if operator not in LOGICAL_OPERATORS:
            raise FilterError(
                f"Unknown logical operator '{operator}'. Valid operators are: {sorted(LOGICAL_OPERATORS)}"
            )
        conditions = condition["conditions"]
        if not isinstance(conditions, list):
            raise FilterError(f"'conditions' must be a list in {condition}")
        parts = [self.node(c) for c in conditions]
        if operator == "OR":
            return "(" + (" OR ".join(parts) or "0") + ")"
        joined = "(" + (" AND ".join(parts) or "1") + ")"
        # In SQL a comparison with NULL is NULL, which NOT keeps NULL; Haystack's NOT is two-valued.
        return f"(NOT COALESCE({joined}, 0))" if operator == "NOT" else joined

    def comparison(self, condition: dict[str, Any]) -> str:
        if "operator" not in condition:
            raise FilterError(f"'operator' key missing in {condition}")
        if "value" not in condition:
            raise FilterError(f"'value' key missing in {condition}")
        name, op, value = str(condition["field"]), condition["operator"], condition["value"]
        if op not in COMPARISON_OPERATORS:
            raise FilterError(
                f"Unknown comparison operator '{op}'. Valid operators are: {sorted(COMPARISON_OPERATORS)}"
            )
        if op in ("in", "not in") and not isinstance(value, list):
            raise FilterError(
                f"Filter value must be a `list` when using operator 'in' or 'not in', received type '{type(value)}'"
            )
        if op in _ORDERING:
            if isinstance(value, list):
                raise FilterError(f"Filter value can't be of type {type(value)} using operators '>', '>=', '<', '<='")
        target = self.target(name)
        kind, expr, type_expr, path = target
        if kind in ("column", "json") and self.native_ok(op, value):
            return self.native(op, value, expr, type_expr)
        return self.row_condition(op, value, target)

    # ---------------------------------------------------------------- fields
    def target(self, name: str) -> tuple[str, str, str | None, tuple[str, ...]]:
        """(kind, SQL expression, SQL json_type expression or None, meta path) of a filter field."""
        parts = name.split(".")
        if len(parts) == 1 and name not in _DOCUMENT_FIELDS:
            parts = ["meta", name]  # Haystack reads unknown plain fields from meta (legacy filters)
        root, rest = parts[0], tuple(parts[1:])
        if root == "meta" and rest:
            try:
                path = meta_field_path(".".join(rest))
            except ValueError:
                return "row", "meta", None, rest  # not expressible as a JSON path: evaluate in Python
            return "json", f"json_extract(meta, {path})", f"json_type(meta, {path})", rest
        if rest or root not in _DOCUMENT_FIELDS or root == "score":
            return "none", "NULL", None, ()  # Haystack: such a field is None on every document
        if root in _COLUMNS:
            return "column", root, None, ()
        return "row", root, None, ()

    @staticmethod
    def native_ok(op: str, value: Any) -> bool:
        if op in ("==", "!="):
            return _plain(value)
        if op in ("in", "not in"):
            return all(_plain(v) for v in value)
        return value is None or (isinstance(value, (int, float)))  # ordering: numbers (and bools) only

    # ---------------------------------------------------------------- SQL
    def param(self, value: Any) -> str:
        self.out.params.append(value)
        return "?"

    def equals(self, value: Any, expr: str, type_expr: str | None) -> str:
        if value is None:
            return f"({expr} IS NULL)"
        test = f"{expr} = {self.param(value)}"
        if isinstance(value, str) and type_expr is not None:
            test += f" AND {type_expr} = 'text'"  # a JSON array/object reads back as text: not equal to a string
        return f"({test})"

    def native(self, op: str, value: Any, expr: str, type_expr: str | None) -> str:
        if op == "==":
            return self.equals(value, expr, type_expr)
        if op == "!=":
            return f"(NOT COALESCE({self.equals(value, expr, type_expr)}, 0))"
        if op in ("in", "not in"):
            numbers = [v for v in value if isinstance(v, (bool, int, float))]
            tests = [f"({expr} IN ({', '.join(self.param(v) for v in numbers)}))"] if numbers else []
            tests += [self.equals(v, expr, type_expr) for v in value if not isinstance(v, (bool, int, float))]
            test = "(" + (" OR ".join(tests) or "0") + ")"
            return test if op == "in" else f"(NOT COALESCE({test}, 0))"
        if value is None:
            return "(0)"  # Haystack: None never orders
        test = f"{expr} {_ORDERING[op]} {self.param(value)}"
        if type_expr is not None:
            test += f" AND {type_expr} IN {_NUMBER_TYPES}"
        else:
            test += f" AND typeof({expr}) IN ('integer', 'real')"
        return f"({test})"

    def row_condition(self, op: str, value: Any, target: tuple[str, str, str | None, tuple[str, ...]]) -> str:
        kind, expr, _, path = target
        index = len(self.out.row_conditions)
        self.out.row_conditions.append((op, value, path))
        if kind == "json" or expr == "meta":
            return f"({UDF_NAME}({index}, 'meta', meta))"  # whole meta (path ()) or a nested field
        if kind == "none":
            return f"({UDF_NAME}({index}, 'none', NULL))"
        if kind == "column":
            return f"({UDF_NAME}({index}, 'column', {expr}))"
        if expr == "blob":
            if op in ("==", "!=") and value is None:
                return f"(blob_info IS {'' if op == '==' else 'NOT '}NULL)"
            raise FilterError("FaissDocumentStore filters on 'blob' only support '== None' and '!= None'")
        return f"({UDF_NAME}({index}, '{expr}', {expr}))"  # embedding, sparse_embedding
