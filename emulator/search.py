"""Toloka search semantics: exact and range filters, sort, limit, has_more.

A :class:`Resource` says which query parameters a list endpoint understands
(toloka-api.md section 2). :func:`parse_query` turns request parameters into a
:class:`Query` (or a 400 ``VALIDATION_ERROR``), and :func:`run` applies it to
candidate documents. Routes pick the candidates from the store's in-memory
indexes; when the candidates already come in the requested order (a pool's id
list, or a per-pool time index), ``run`` stops after ``limit + 1`` matches
instead of filtering and sorting everything.

Semantics: dates compare as datetimes, ids as strings, numbers as numbers; a
range filter on a field that is ``null`` excludes the object; ties in the sort
are broken by id; ``status`` accepts a comma list.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .api.errors import ApiError
from .ids import parse_stored_time, parse_time

ID, TIME, INT, STR = "id", "time", "int", "str"
_OPS = ("_gte", "_gt", "_lte", "_lt")


@dataclass(frozen=True)
class Resource:
    """The search vocabulary of one list endpoint."""

    exact: Mapping[str, str]            # query name -> document path ("details.user_id")
    ranges: Mapping[str, str]           # field -> ID | TIME | INT
    sorts: frozenset[str]
    default_limit: int = 50
    max_limit: int = 300
    list_params: frozenset[str] = frozenset({"status"})
    int_exact: frozenset[str] = frozenset()
    clamp_limit: bool = False           # a limit above max_limit is served as max_limit (else 400)


@dataclass
class Query:
    """A parsed search request."""

    exact: dict[str, frozenset[Any]] = field(default_factory=dict)   # path -> accepted values
    ranges: list[tuple[str, str, str, Any]] = field(default_factory=list)  # field, kind, op, value
    sort: list[tuple[str, bool]] = field(default_factory=list)       # (field, descending)
    limit: int = 50

    def range_bounds(self, name: str) -> tuple[Any, bool, Any, bool]:
        """Tightest (low, low_inclusive, high, high_inclusive) on one field (None = open)."""
        low: Any = None
        low_inc = True
        high: Any = None
        high_inc = True
        for fname, _kind, op, value in self.ranges:
            if fname != name:
                continue
            if op in ("_gt", "_gte"):
                inc = op == "_gte"
                if low is None or value > low or (value == low and not inc):
                    low, low_inc = value, inc
            else:
                inc = op == "_lte"
                if high is None or value < high or (value == high and not inc):
                    high, high_inc = value, inc
        return low, low_inc, high, high_inc


def _invalid(name: str, message: str, code: str = "VALUE_NOT_ALLOWED") -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", "Validation failed",
                    {name: {"code": code, "message": message}})


def _convert(name: str, kind: str, raw: str) -> Any:
    if kind == TIME:
        try:
            return parse_time(raw)
        except ValueError:
            raise _invalid(name, f"Invalid date: {raw!r}") from None
    if kind == INT:
        try:
            return int(raw)
        except ValueError:
            raise _invalid(name, f"Invalid number: {raw!r}") from None
    return raw


def _parse_limit(raw: str, resource: Resource) -> int:
    try:
        limit = int(raw)
    except ValueError:
        raise _invalid("limit", f"Invalid number: {raw!r}") from None
    if limit < 1:
        raise _invalid("limit", "must be at least 1", "VALUE_LESS_THAN_MIN")
    if limit > resource.max_limit and resource.clamp_limit:
        return resource.max_limit
    if limit > resource.max_limit:
        raise _invalid("limit", f"must be at most {resource.max_limit}",
                       "VALUE_GREATER_THAN_MAX")
    return limit


def parse_query(params: Mapping[str, str], resource: Resource) -> Query:
    """Validate and parse the query string of a search request."""
    query = Query(limit=resource.default_limit)
    for name, raw in params.items():
        if name == "limit":
            query.limit = _parse_limit(raw, resource)
        elif name == "sort":
            for part in filter(None, (p.strip() for p in raw.split(","))):
                desc = part.startswith("-")
                fname = part.lstrip("-+")
                if fname not in resource.sorts:
                    raise _invalid("sort", f"Cannot sort by {fname!r}")
                query.sort.append((fname, desc))
        elif name in resource.exact:
            path = resource.exact[name]
            values = raw.split(",") if name in resource.list_params else [raw]
            if name in resource.int_exact:
                converted: frozenset[Any] = frozenset(_convert(name, INT, v) for v in values)
            else:
                converted = frozenset(values)
            query.exact[path] = converted
        else:
            for op in _OPS:
                if name.endswith(op) and name[: -len(op)] in resource.ranges:
                    fname = name[: -len(op)]
                    kind = resource.ranges[fname]
                    query.ranges.append((fname, kind, op, _convert(name, kind, raw)))
                    break
            # Unknown parameters are ignored, as a lenient server would.
    if not any(f == "id" for f, _ in query.sort):
        query.sort.append(("id", False))     # deterministic tie-break
    return query


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path (``details.user_id``), or None."""
    if "." not in path:
        return doc.get(path)
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _matcher(query: Query, satisfied: frozenset[str]) -> Callable[[Mapping[str, Any]], bool]:
    exact = list(query.exact.items())
    ranges = [(f, kind, op, v) for f, kind, op, v in query.ranges if f not in satisfied]

    def match(doc: Mapping[str, Any]) -> bool:
        for path, accepted in exact:
            if get_path(doc, path) not in accepted:
                return False
        for fname, kind, op, bound in ranges:
            value = doc.get(fname)
            if value is None:
                return False            # nulls never satisfy a range filter
            if kind == TIME:
                value = parse_stored_time(value)
            if op == "_gt" and not value > bound:
                return False
            if op == "_gte" and not value >= bound:
                return False
            if op == "_lt" and not value < bound:
                return False
            if op == "_lte" and not value <= bound:
                return False
        return True

    return match


def _sort_docs(docs: list[dict[str, Any]], sort: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    # Stable sorts from the last key to the first; nulls go last in either direction.
    for fname, desc in reversed(sort):
        present = [d for d in docs if d.get(fname) is not None]
        absent = [d for d in docs if d.get(fname) is None]
        present.sort(key=lambda d: d[fname], reverse=desc)
        docs = present + absent
    return docs


def run(query: Query, candidates: Iterable[dict[str, Any]], *, ordered_by: list[tuple[str, bool]] | None = None,
        extra: Callable[[dict[str, Any]], bool] | None = None,
        satisfied: frozenset[str] = frozenset()) -> tuple[list[dict[str, Any]], bool]:
    """Apply a query to candidate documents; returns (items, has_more).

    ``ordered_by`` declares the order the candidates come in; when it equals the
    requested sort, the scan stops after ``limit + 1`` matches. Time-field sorts
    compare the emitted strings, which have one fixed format, so string order is
    time order. ``satisfied`` names fields whose range filters the candidates
    already meet (an index scan between the bounds), so they are not re-checked.
    """
    match = _matcher(query, satisfied)
    wanted = query.limit + 1
    if ordered_by is not None and ordered_by == query.sort:
        found: list[dict[str, Any]] = []
        for doc in candidates:
            if match(doc) and (extra is None or extra(doc)):
                found.append(doc)
                if len(found) >= wanted:
                    break
    else:
        found = [d for d in candidates if match(d) and (extra is None or extra(d))]
        found = _sort_docs(found, query.sort)
    return found[: query.limit], len(found) > query.limit


def iter_sorted_ids(ids: list[str], query: Query) -> Iterator[str]:
    """Ids from a sorted id list, starting at the query's lower id bound (bisect)."""
    low, low_inc, high, high_inc = query.range_bounds("id")
    start = 0
    if low is not None:
        start = bisect.bisect_left(ids, low) if low_inc else bisect.bisect_right(ids, low)
    for i in range(start, len(ids)):
        object_id = ids[i]
        if high is not None and (object_id > high or (object_id == high and not high_inc)):
            return
        yield object_id


def iter_time_index(keys: list[tuple[datetime, str]], query: Query, fname: str) -> Iterator[str]:
    """Ids from a sorted ``(time, id)`` list within the query's bounds on ``fname``."""
    low, low_inc, high, high_inc = query.range_bounds(fname)
    start = 0
    if low is not None:
        # (low, "") sorts before every id at that time; (low, "\uffff") after all of them.
        start = bisect.bisect_left(keys, (low, "") if low_inc else (low, "\uffff"))
    for i in range(start, len(keys)):
        at, object_id = keys[i]
        if high is not None and (at > high or (at == high and not high_inc)):
            return
        yield object_id
