"""The client's IP address, for per-address rate limits and the admin login lockout.

``REMOTE_ADDR`` unless ``HERALD_TRUSTED_PROXY_COUNT`` says how many reverse proxies stand in
front of Herald: then the address the outermost of them saw, which is that many entries from the
right of ``X-Forwarded-For`` (each proxy appends the address it received the request from, so
entries further left are whatever the client chose to send and are never trusted).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = settings.HERALD_TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < count:
        return remote  # fewer hops than configured: the request did not come through the proxies
    candidate = forwarded[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
