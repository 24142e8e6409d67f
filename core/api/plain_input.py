"""A fast path for DRF input serializers on hot endpoints (the SDK's player writes).

A DRF serializer deep-copies its declared fields for every instance and runs each value through
several layers; for a 40-field serializer that is most of the Python an SDK ping costs. Here a
body is checked against a table made once from the serializer's own declarations, and only
values whose outcome is certain are accepted:

- a string for a ``CharField`` that is already stripped, printable and within ``max_length``;
- an int (not a bool) for an ``IntegerField``, a number for a ``FloatField``, within bounds;
- a bool for a ``BooleanField``; anything for a ``JSONField`` (orjson only produces JSON);
- None where the field allows null.

Anything else (another field type, a string where an int is declared, a value DRF would
coerce, or reject) returns None, and the caller runs the serializer itself: every error a
client can get, and its wording, still comes from DRF.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.core import validators
from rest_framework import fields, serializers
from rest_framework import validators as drf_validators

_REFUSE = object()
Check = Callable[[Any], Any]  # the value as DRF would return it, or _REFUSE


def _char(field: fields.CharField) -> Check:
    max_length = field.max_length if field.max_length is not None else math.inf

    def check(value: Any) -> Any:
        if type(value) is not str or len(value) > max_length or value.strip() != value:
            return _REFUSE
        if value == "":
            return value if field.allow_blank else _REFUSE
        # isprintable: no NUL or lone surrogate (DRF's validators), no other control character.
        return value if value.isprintable() and field.min_length is None else _REFUSE

    return check


def _bounds(field: fields.Field) -> tuple[float, float]:
    low = field.min_value if field.min_value is not None else -math.inf
    high = field.max_value if field.max_value is not None else math.inf
    return low, high


def _integer(field: fields.IntegerField) -> Check:
    low, high = _bounds(field)

    def check(value: Any) -> Any:
        return value if type(value) is int and low <= value <= high else _REFUSE

    return check


def _float(field: fields.FloatField) -> Check:
    low, high = _bounds(field)

    def check(value: Any) -> Any:
        if type(value) not in (int, float):
            return _REFUSE
        try:
            number = float(value)
        except OverflowError:  # an int beyond a double: DRF's to answer
            return _REFUSE
        return number if math.isfinite(number) and low <= number <= high else _REFUSE

    return check


def _boolean(field: fields.BooleanField) -> Check:
    return lambda value: value if type(value) is bool else _REFUSE


def _json(field: fields.JSONField) -> Check:
    return (lambda value: value) if not field.binary else (lambda value: _REFUSE)


# Exact types only: subclasses (RegexField, EmailField, IPAddressField, …) add rules of their own.
_CHECKS: dict[type, Callable[[Any], Check]] = {
    fields.CharField: _char,
    fields.IntegerField: _integer,
    fields.FloatField: _float,
    fields.BooleanField: _boolean,
    fields.JSONField: _json,
}
# The validators these fields add from their own arguments, which the checks above apply.
_OWN_VALIDATORS = (
    validators.MaxLengthValidator,
    validators.MaxValueValidator,
    validators.MinValueValidator,
    validators.ProhibitNullCharactersValidator,
    drf_validators.ProhibitSurrogateCharactersValidator,
)
Table = dict[str, tuple[Check | None, bool]]
_tables: dict[type, Table | None] = {}


def _plain(serializer: serializers.Serializer, name: str, field: fields.Field) -> bool:
    return (
        type(field) in _CHECKS
        and not field.read_only
        and field.source == name
        and all(type(v) in _OWN_VALIDATORS for v in field.validators)
        and not hasattr(serializer, f"validate_{name}")
    )


def _table(serializer_class: type[serializers.Serializer]) -> Table | None:
    """Field name -> (check, allow_null), the check None for a field this module does not
    handle; None for a serializer it cannot stand in for at all: one with a required field or a
    default (DRF adds absent fields), or its own ``validate()``."""
    if serializer_class not in _tables:
        serializer = serializer_class()
        table: Table | None = {}
        for name, field in serializer.fields.items():
            if field.required or field.default is not fields.empty:
                table = None
                break
            table[name] = (
                _CHECKS[type(field)](field) if _plain(serializer, name, field) else None,
                field.allow_null,
            )
        if serializer_class.validate is not serializers.Serializer.validate:
            table = None
        _tables[serializer_class] = table
    return _tables[serializer_class]


def plain_validated(serializer_class: type[serializers.Serializer], body: dict[str, Any]) -> dict | None:
    """What ``serializer_class(data=body).validated_data`` would be, or None when the serializer
    must run (a field or a value this fast path is not certain about)."""
    table = _table(serializer_class)
    if table is None:
        return None
    data = {}
    for name, value in body.items():
        entry = table.get(name)
        if entry is None:
            continue  # not a field of the serializer: DRF drops it too
        check, allow_null = entry
        if check is None:
            return None
        if value is None:
            if not allow_null:
                return None
            data[name] = None
            continue
        checked = check(value)
        if checked is _REFUSE:
            return None
        data[name] = checked
    return data
