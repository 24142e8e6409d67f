"""Send one webhook call: claim its row, POST the signed event, record the outcome.

Every call is delivered at least once (never exactly once): the receiver deduplicates on the
``X-Herald-Delivery`` header, the call's id, which stays the same across retries.

Signing (``X-Herald-Signature: t=<unix seconds>,v1=<hex>``): ``v1`` is
HMAC-SHA256(webhook secret, ``"<t>.<raw body>"``) in lowercase hex. A receiver recomputes it over
the raw bytes it received, compares in constant time, and refuses a ``t`` too far from its clock
(``verify_signature`` is the reference implementation).

Safety: the URL is checked again at every attempt with ``core.ssrf.resolve_public_url`` and the
connection is pinned to the checked addresses; redirects are never followed; each attempt has a
``HERALD_WEBHOOK_TIMEOUT_SECONDS`` total timeout; the response body is read and discarded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import pycurl
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from core.ssrf import UnresolvableHost, UnsafeUrl, resolve_public_url
from webhooks.models import WebhookCall

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Herald-Signature"
EVENT_HEADER = "X-Herald-Event"
DELIVERY_HEADER = "X-Herald-Delivery"
USER_AGENT = "Herald-Webhooks/1.0"
SIGNATURE_TOLERANCE_SECONDS = 300
# A call claimed this long ago whose worker has not finished is presumed lost (worker killed):
# longer than the task's hard time limit, so a live attempt is never taken over.
LEASE = timedelta(seconds=120)
# A task may arrive this much before its row says it is due (clocks of web and worker hosts).
EARLY_TOLERANCE = timedelta(seconds=5)
MAX_BACKOFF_SECONDS = 3600.0
MAX_ERROR_LENGTH = 500


def body_bytes(payload: dict) -> bytes:
    """The exact bytes sent and signed: compact JSON with sorted keys (as every MFP example)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Herald-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: parse ``t`` and the ``v1`` values, check ``t`` is recent and one
    ``v1`` matches HMAC-SHA256(secret, ``"<t>.<body>"``) in constant time."""
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter before attempt ``attempts + 1``: base·2^(n-1), scaled by a
    random factor in [0.5, 1.5) so that a receiver's outage does not synchronise the retries."""
    base = settings.HERALD_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return min(MAX_BACKOFF_SECONDS, base * random.uniform(0.5, 1.5))


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str = ""
    permanent: bool = False  # do not retry (the URL is no longer acceptable)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_json(url: str, body: bytes, headers: list[str], *, timeout: float) -> Attempt:
    """One POST, pinned to the addresses the SSRF check accepted; never follows a redirect."""
    try:
        pinned = resolve_public_url(url, purpose="webhook url", require_https=False)
    except UnresolvableHost as exc:
        return Attempt(None, str(exc)[:MAX_ERROR_LENGTH])
    except UnsafeUrl as exc:
        return Attempt(None, f"refused: {exc}"[:MAX_ERROR_LENGTH], permanent=True)
    handle = pycurl.Curl()
    try:
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.POST, 1)
        handle.setopt(pycurl.POSTFIELDS, body)
        handle.setopt(pycurl.POSTFIELDSIZE, len(body))
        handle.setopt(pycurl.HTTPHEADER, [*headers, "Expect:"])
        handle.setopt(pycurl.USERAGENT, USER_AGENT)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.RESOLVE, pinned.curl_resolve())
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(timeout * 1000))
        handle.setopt(pycurl.TIMEOUT_MS, int(timeout * 1000))
        handle.setopt(pycurl.WRITEFUNCTION, lambda _chunk: None)  # the response body is not used
        handle.perform()
        status = int(handle.getinfo(pycurl.RESPONSE_CODE))
    except pycurl.error as exc:
        code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
        return Attempt(None, f"network error {code}: {message}"[:MAX_ERROR_LENGTH])
    finally:
        handle.close()
    if 200 <= status < 300:
        return Attempt(status)
    return Attempt(status, f"HTTP {status}")


def webhook_call_deliver(*, call_id: int) -> float | None:
    """Make one attempt at a call. Returns the countdown to the next attempt, or None when there
    is nothing more for this task to do. Steps:

    1. claim the row by a conditional UPDATE (pending and due, or sending with an expired lease),
       counting the attempt; a duplicate or early task changes nothing and stops;
    2. sign and POST the payload (no database transaction is open during the request);
    3. record delivered (2xx), or failed (attempts used up, or the URL refused), or pending again
       with the backoff's ``next_attempt_at``; only the claimant of this attempt may record it.
    """
    now = timezone.now()
    claimed = (
        WebhookCall.objects.filter(pk=call_id)
        .filter(
            Q(status=WebhookCall.Status.PENDING, next_attempt_at__lte=now + EARLY_TOLERANCE)
            | Q(status=WebhookCall.Status.SENDING, next_attempt_at__lt=now - LEASE)
        )
        .update(status=WebhookCall.Status.SENDING, next_attempt_at=now, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return None
    call = WebhookCall.objects.select_related("webhook").filter(pk=call_id).first()
    if call is None:
        return None  # the webhook was deleted meanwhile
    body = body_bytes(call.payload)
    headers = [
        "Content-Type: application/json",
        f"{EVENT_HEADER}: {call.event_type}",
        f"{DELIVERY_HEADER}: {call.pk}",
        f"{SIGNATURE_HEADER}: {signature(call.webhook.secret, int(time.time()), body)}",
    ]
    attempt = post_json(call.webhook.url, body, headers, timeout=settings.HERALD_WEBHOOK_TIMEOUT_SECONDS)
    finished = timezone.now()
    mine = WebhookCall.objects.filter(pk=call.pk, status=WebhookCall.Status.SENDING, attempts=call.attempts)
    if attempt.ok:
        mine.update(
            status=WebhookCall.Status.DELIVERED,
            delivered_at=finished,
            last_status_code=attempt.status_code,
            last_error="",
        )
        return None
    if attempt.permanent or call.attempts >= settings.HERALD_WEBHOOK_MAX_ATTEMPTS:
        mine.update(
            status=WebhookCall.Status.FAILED, last_status_code=attempt.status_code, last_error=attempt.error
        )
        logger.info("webhook call %s failed after %s attempts: %s", call.pk, call.attempts, attempt.error)
        return None
    countdown = backoff_seconds(call.attempts)
    updated = mine.update(
        status=WebhookCall.Status.PENDING,
        next_attempt_at=finished + timedelta(seconds=countdown),
        last_status_code=attempt.status_code,
        last_error=attempt.error,
    )
    return countdown if updated else None


def webhook_calls_sweep(*, now=None, grace: timedelta = timedelta(seconds=60), limit: int = 1000) -> int:
    """Re-enqueue calls whose task was lost: pending and overdue by ``grace``, or sending with an
    expired lease. Duplicates are harmless (the claim), so this errs on the side of sending."""
    from webhooks.services import _enqueue

    now = now or timezone.now()
    lost = Q(status=WebhookCall.Status.PENDING, next_attempt_at__lt=now - grace) | Q(
        status=WebhookCall.Status.SENDING, next_attempt_at__lt=now - LEASE
    )
    stale = list(
        WebhookCall.objects.filter(lost).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    # Pending again and due now (the conditions re-checked, so a call claimed meanwhile is left
    # alone): the next sweep leaves them to the task enqueued here, and a worker that held an
    # expired lease can no longer record its attempt (the count moves on).
    WebhookCall.objects.filter(lost, pk__in=stale).update(
        status=WebhookCall.Status.PENDING, next_attempt_at=now
    )
    _enqueue(stale)
    return len(stale)
