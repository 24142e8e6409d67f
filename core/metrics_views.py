"""``GET /metrics``: the Prometheus exposition, for a scraper that proves it may read it.

A request is let in when it carries ``Authorization: Bearer <HERALD_METRICS_TOKEN>`` or comes
from an address in ``HERALD_METRICS_ALLOWED_NETWORKS``. With neither configured nobody is
(production's default); the local settings allow loopback. The client address is
``REMOTE_ADDR``: ``X-Forwarded-For`` can be forged, so behind a proxy use the token.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from core import metrics


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def _from_allowed_network(request: HttpRequest) -> bool:
    networks = _networks(tuple(settings.HERALD_METRICS_ALLOWED_NETWORKS))
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _has_token(request: HttpRequest) -> bool:
    expected = settings.HERALD_METRICS_TOKEN
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (_has_token(request) or _from_allowed_network(request)):
        if settings.HERALD_METRICS_TOKEN:
            response = JsonResponse({"errors": ["A valid metrics token is required."]}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return JsonResponse({"errors": ["Metrics are not available to this address."]}, status=403)
    body, content_type = metrics.scrape(request.META.get("HTTP_ACCEPT", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
