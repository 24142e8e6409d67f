"""Helpers shared by the client scripts (each runs with one client version on PYTHONPATH)."""

from __future__ import annotations

import contextlib
import json

from onesignal.exceptions import ApiException


def api_error(exc: ApiException) -> dict:
    body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
    with contextlib.suppress(TypeError, ValueError):
        body = json.loads(body)
    return {"exception": type(exc).__name__, "status": exc.status, "body": body}


def expect_error(call, *args, **kwargs) -> dict:
    try:
        result = call(*args, **kwargs)
    except ApiException as exc:
        return api_error(exc)
    raise AssertionError(f"expected an ApiException, got {result!r}")


def model(value) -> dict:
    """A decoded model as JSON-able data, with its class name (what the client built)."""
    data = value.to_dict()
    data["_type"] = type(value).__name__
    return data
