"""Collection GETs: ``offset``/``size`` paging with real links, ``expand`` and ``filter`` (§1.6, §5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Q, QuerySet

from imfpush.errors import INVALID_FILTER, INVALID_OFFSET, INVALID_SIZE, MfpError

DEFAULT_SIZE = 100
MAX_SIZE = 500
OPERATORS = ("==", "=@")


def query_value(request, name: str) -> str | None:
    """A query parameter; an empty value counts as absent (§1.5)."""
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def query_flag(request, *names: str) -> bool:
    for name in names:
        value = query_value(request, name)
        if value is not None:
            return value.lower() not in ("false", "0")
    return False


@dataclass(frozen=True)
class FilterField:
    """One filterable field: the operators it allows and how each value becomes a condition."""

    operators: tuple[str, ...]
    condition: Callable[[str, str], Q]  # (operator, value) -> Q


def text_field(lookup: str, operators: tuple[str, ...] = OPERATORS) -> FilterField:
    def condition(operator: str, value: str) -> Q:
        return Q(**{lookup if operator == "==" else f"{lookup}__icontains": value})

    return FilterField(operators, condition)


def _split_values(expression: str, raw: str) -> list[str]:
    values, current, index = [], [], 0
    while index < len(expression):
        char = expression[index]
        if char == "\\":
            following = expression[index + 1 : index + 2]
            if following not in (",", "\\"):
                raise _filter_error(raw, "a backslash must escape a comma or a backslash")
            current.append(following)
            index += 2
            continue
        if char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    values.append("".join(current))
    if any(value == "" for value in values):
        raise _filter_error(raw, "empty value")
    return values


def _filter_error(raw: str, reason: str) -> MfpError:
    return MfpError(400, "FPWSE0007E", INVALID_FILTER, params={"filter": raw, "reason": reason})


def parse_filters(request, fields: dict[str, FilterField]) -> Q:
    """Each ``filter`` parameter is ``name op value[,value…]``; repeats are ANDed, commas ORed."""
    combined = Q()
    for raw in request.query_params.getlist("filter"):
        if raw == "":
            continue
        positions = [(raw.find(op), op) for op in OPERATORS if raw.find(op) > 0]
        if not positions:
            raise _filter_error(raw, "expected name==value or name=@value")
        position, operator = min(positions)
        name, expression = raw[:position], raw[position + len(operator) :]
        if not name.isalpha():
            raise _filter_error(raw, "the field name must be letters only")
        field = fields.get(name)
        if field is None:
            raise _filter_error(raw, f"unknown field {name}; allowed: {', '.join(sorted(fields))}")
        if operator not in field.operators:
            raise _filter_error(raw, f"operator {operator} is not allowed on {name}")
        alternatives = Q()
        for value in _split_values(expression, raw):
            alternatives |= field.condition(operator, value)
        combined &= alternatives
    return combined


def _int_param(request, name: str, default: int, minimum: int, code: str, message) -> int:
    raw = query_value(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise MfpError(400, code, message)
    return value


def page(request, queryset: QuerySet, key: str, item: Callable) -> dict:
    """One page of ``queryset`` as ``{key: [...], "pageInfo": {...}}`` with absolute links."""
    offset = _int_param(request, "offset", 0, 0, "FPWSE1079E", INVALID_OFFSET)
    size = min(_int_param(request, "size", DEFAULT_SIZE, 1, "FPWSE1080E", INVALID_SIZE), MAX_SIZE)
    total = queryset.count()
    rows = list(queryset[offset : offset + size]) if offset < total else []
    return {
        key: [item(row) for row in rows],
        "pageInfo": {
            "count": len(rows),
            "totalCount": total,
            "next": _link(request, offset + size) if offset + size < total else "",
            "previous": _link(request, max(0, offset - size)) if offset > 0 else "",
        },
    }


def _link(request, offset: int) -> str:
    params = [(k, v) for k, values in request.query_params.lists() for v in values if k != "offset"]
    params.append(("offset", str(offset)))
    return request.build_absolute_uri(request.path) + "?" + urlencode(params)
