"""Request id, log context, access log and HTTP metrics for every request (first middleware)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.http import HttpRequest, HttpResponse

from core import logs, metrics

access_logger = logging.getLogger("herald.request")

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is a plain token; anything else (too long, spaces, quotes,
# something that looks like a secret) is replaced by a fresh one.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_CATCH_ALL_ROUTES = {"^.*$", ".*"}
# Route arguments that are secrets themselves (capability URLs): never logged.
_SECRET_KWARGS = {"token", "file_name"}


def request_id_for(request: HttpRequest) -> str:
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    if _SANE_REQUEST_ID.match(incoming) and logs.scrub(incoming) == incoming:
        return incoming
    return uuid.uuid4().hex


def route_label(request: HttpRequest) -> str:
    """The URL pattern that served the request, ``/``-trimmed so ``players`` and ``players/``
    count together; ``<unmatched>`` for the catch-all 404 and ``<unresolved>`` when no URL was
    resolved (a middleware answered first)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    if match.route in _CATCH_ALL_ROUTES:
        return "<unmatched>"
    return match.route.rstrip("/") or "/"


def loggable_path(request: HttpRequest) -> str:
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in match.kwargs.items() if match else ():
        if (name in _SECRET_KWARGS or logs.SECRET_NAME.match(name)) and isinstance(value, str) and value:
            path = path.replace(value, logs.REDACTED)
    return path


class RequestObservabilityMiddleware:
    """Binds a request id (``X-Request-ID`` in, or a new one; always sent back), counts and
    times the request by route, and writes one access-log line with the request and app ids."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        logs.clear()  # a thread serves many requests: nothing may carry over
        request_id = request_id_for(request)
        request.request_id = request_id
        logs.bind(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            route = route_label(request)
            metrics.record_request(request.method, route, response.status_code, elapsed)
            access_logger.log(
                logging.DEBUG if route == "metrics" else logging.INFO,
                "%s %s %s",
                request.method,
                loggable_path(request),
                response.status_code,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            return response
        finally:
            logs.clear()
