"""Limits every JSON request body obeys, on both APIs (README "Limits").

orjson parses up to 1,024 levels of nesting, but much of Herald (orjson.dumps: 254 levels;
``json`` and Python's recursion limit: about 1,000) cannot handle what it accepts, so a deep body
would be a 500 somewhere later. No Herald or OneSignal body needs more than a few levels, so
bodies nested deeper than ``MAX_JSON_DEPTH`` are refused at the door with a 400.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON nested more than {MAX_JSON_DEPTH} levels deep"


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests objects or arrays more than ``limit`` levels deep (iteratively:
    a recursive walk would itself overflow on the bodies it is meant to catch)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(text: str | bytes) -> Any:
    """``json.loads`` for JSON that a client sent inside a field (a service account as a string,
    a form's textarea): too deep a value raises ``json.JSONDecodeError`` like any other bad JSON,
    where ``json.loads`` would raise ``RecursionError`` (a 500) or return something that breaks
    later."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(TOO_DEEP, _as_text(text), 0) from None
    if json_too_deep(value):
        raise json.JSONDecodeError(TOO_DEEP, _as_text(text), 0)
    return value


def _as_text(text: str | bytes) -> str:
    return text if isinstance(text, str) else text.decode("utf-8", "replace")


class JSONFormField(forms.JSONField):
    """Django's form ``JSONField`` with the same depth limit (the dashboard's JSON textareas)."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(TOO_DEEP, code="invalid") from None
        if json_too_deep(converted):
            raise forms.ValidationError(TOO_DEEP, code="invalid")
        return converted

    def bound_data(self, data, initial):
        # Redisplaying the form parses the input again: keep a too-deep one as the text it was.
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)
        return forms.fields.InvalidJSONInput(data) if json_too_deep(value) else value
