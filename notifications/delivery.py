"""Deliver one batch: claim it, render per recipient, send through the provider, record outcomes.

Outcomes are recorded in bulk after every step of sends (``record_step``): delivery rows,
unsubscribed players, badge counts written back (APNs). The notification's counters and its
per-platform stats add a batch's outcomes when the batch ends (``batch_outcomes_count``).
Transient failures stay queued and the batch goes back to pending with a backoff (honouring
Retry-After) until attempts run out.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from collections import defaultdict
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core import logs, metrics
from notifications.canonical_ids import player_identifiers_replace
from notifications.models import Delivery, DeliveryBatch, Notification
from notifications.pipeline import batch_outcomes_count, complete_if_done
from notifications.platforms import PROVIDER_FOR_DEVICE_TYPE
from notifications.providers import provider_for
from notifications.providers.base import (
    BADGE_COUNT,
    CANONICAL_IDENTIFIER,
    Outcome,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.rendering import render_text
from notifications.targeting import includes_unsubscribed
from players.models import Player
from webhooks.hooks import batch_events_listened, on_batch_recorded

logger = logging.getLogger(__name__)

RECIPIENT_FIELDS = (
    "pk",
    "player_id",
    "player__device_type",
    "player__identifier",
    "player__language",
    "player__tags",
    "player__badge_count",
    "player__test_type",
    "player__web_auth",
    "player__web_p256",
    "player__notification_types",
    "player__invalid_identifier",
)
# Sends in the first step of a notification's first batch to a device type in a process
# (see deliver_batch).
FIRST_STEP = 10
OUTCOME_STATUS = {
    Outcome.SENT: Delivery.Status.SENT,
    Outcome.INVALID_RECIPIENT: Delivery.Status.FAILED,
    Outcome.ERROR: Delivery.Status.ERRORED,
}


def claim_batch(batch_id: int) -> DeliveryBatch | None:
    now = timezone.now()
    claimed = DeliveryBatch.objects.filter(pk=batch_id, status=DeliveryBatch.Status.PENDING).update(
        status=DeliveryBatch.Status.SENDING,
        lease_expires_at=now + timedelta(seconds=settings.HERALD_BATCH_LEASE_SECONDS),
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        return None
    return DeliveryBatch.objects.select_related("notification__app").get(pk=batch_id)


def deliver_batch(*, batch_id: int) -> None:
    batch = claim_batch(batch_id)
    if batch is None:
        return  # already claimed, done or canceled: a duplicate message
    leased = time.monotonic()  # when the lease (HERALD_BATCH_LEASE_SECONDS) was last set
    notification = batch.notification
    logs.bind(notification_id=notification.pk, app_id=notification.app_id)
    if notification.canceled:
        _cancel_batch(batch)
        return
    rows = list(Delivery.objects.filter(batch=batch, status=Delivery.Status.QUEUED).values(*RECIPIENT_FIELDS))
    now = timezone.now()
    ttl_left = notification.ttl - int((now - batch.available_at).total_seconds())
    results: list[SendResult] = []
    sendable = []
    include_unsubscribed = includes_unsubscribed(notification.request, {batch.device_type})
    for row in rows:
        subscribed = (
            (row["player__notification_types"] > 0 or include_unsubscribed)
            and not row["player__invalid_identifier"]
            and row["player__identifier"]
        )
        if ttl_left <= 0:
            results.append(SendResult(row["player_id"], Outcome.ERROR, "ttl_expired"))
        elif not subscribed:
            results.append(SendResult(row["player_id"], Outcome.INVALID_RECIPIENT, "unsubscribed"))
        else:
            sendable.append(row)
    # Outcomes are committed after every step of sends: a worker killed mid-batch leaves only the
    # sends of its current step unrecorded, so the batch's retry resends (duplicates) at most that
    # many, not the whole batch. Steps start small (or where the notification's last batch to the
    # same device type in this process left off) and double up to ``record_step`` while a step
    # takes under an eighth of the lease (halving above a quarter), so that a slow gateway never
    # lets the lease run out while the batch is still being sent, when a second worker would take
    # it and send it again.
    # Steps are small (10 up to 200,000 recipients), so each record must be cheap (see _record):
    # the webhook question is asked once per batch, and the lease is renewed only once a quarter
    # of it has gone, so that at least three quarters of it remain whenever a step starts.
    most = record_step(notification.recipients)
    lease = settings.HERALD_BATCH_LEASE_SECONDS
    listened = batch_events_listened(notification.app_id)
    # The first step is small only until the gateway's pace is known: the notification's previous
    # batch to the same device type in this process has already learned it, so the next one
    # carries on from there.
    gateway = (notification.pk, batch.device_type)
    step, start = min(most, _step_reached.get(gateway, FIRST_STEP)), 0
    while start < len(sendable):
        began = time.monotonic()
        part = _send(notification, batch, sendable[start : start + step], ttl_left)
        start += step
        if start >= len(sendable):
            results += part
            step = _next_step(step, time.monotonic() - began, lease, most)
            break
        results += [r for r in part if r.outcome is Outcome.TRANSIENT]
        renew = time.monotonic() - leased > lease / 4
        final = [r for r in part if r.outcome is not Outcome.TRANSIENT]
        _record(batch, notification, final, last=False, renew_lease=renew, listened=listened)
        if renew:
            leased = time.monotonic()
        step = _next_step(step, time.monotonic() - began, lease, most)
    if any(r.outcome is Outcome.TRANSIENT for r in results):
        _step_reached.pop(gateway, None)  # the retry meets a struggling gateway: start small again
    else:
        _remember_step(gateway, step)
    _record(batch, notification, results, listened=listened)


def _next_step(step: int, took: float, lease: float, most: int) -> int:
    """Halve a step that took over a quarter of the lease, double one under an eighth."""
    if took > lease / 4:
        return max(1, step // 2)
    if took < lease / 8:
        return min(most, step * 2)
    return step


# (notification, device type) → the step its last batch in this process ended with.
_step_reached: dict[tuple[UUID, int], int] = {}
STEPS_REMEMBERED = 1000


def _remember_step(gateway: tuple[UUID, int], step: int) -> None:
    if len(_step_reached) >= STEPS_REMEMBERED and gateway not in _step_reached:
        _step_reached.clear()  # only running notifications matter; forgetting one costs a few steps
    _step_reached[gateway] = step


def record_step(recipients: int) -> int:
    """The most sends a step of a notification with this many recipients may carry.

    A step is what a killed worker process may resend, so it is a budget of duplicates: at least
    ``HERALD_DELIVERY_RECORD_EVERY``, and for a large notification its share of
    ``HERALD_CRASH_RESENDS_PER_MILLION``, never above a batch. The share keeps duplicates a fixed
    fraction of the audience while letting a large fan-out keep more streams in flight, which is
    where throughput matters (a process sends at most one step per gateway round trip). During
    the fan-out ``recipients`` only grows, so an early batch's step is smaller, never larger.
    """
    share = recipients * settings.HERALD_CRASH_RESENDS_PER_MILLION // 1_000_000
    return max(1, min(settings.HERALD_BATCH_SIZE, max(settings.HERALD_DELIVERY_RECORD_EVERY, share)))


def _send(
    notification: Notification, batch: DeliveryBatch, rows: list[dict], ttl_left: int
) -> list[SendResult]:
    try:
        provider = provider_for(PROVIDER_FOR_DEVICE_TYPE.get(batch.device_type), notification.app)
    except ProviderNotConfigured as exc:
        return [SendResult(row["player_id"], Outcome.ERROR, str(exc)[:64]) for row in rows]
    body = notification.request
    items = []
    for row in rows:
        tags, language = row["player__tags"] or {}, row["player__language"]
        recipient = Recipient(
            player_id=row["player_id"],
            device_type=row["player__device_type"],
            identifier=row["player__identifier"],
            language=language,
            tags=tags,
            badge_count=row["player__badge_count"],
            test_type=row["player__test_type"],
            web_auth=row["player__web_auth"],
            web_p256=row["player__web_p256"],
        )
        message = RenderedMessage(
            notification_id=str(notification.pk),
            heading=render_text(body.get("headings"), language, tags),
            content=render_text(body.get("contents"), language, tags),
            subtitle=render_text(body.get("subtitle"), language, tags),
            body=body,
            ttl_seconds=ttl_left,
        )
        items.append((recipient, message))
    try:
        results = provider.send(items)
    except Exception:  # a provider bug must not lose the batch: retry it like a gateway outage
        logger.exception("provider %s failed on batch %s", provider.platform, batch.pk)
        return [SendResult(row["player_id"], Outcome.TRANSIENT, "provider_exception") for row in rows]
    returned = {result.player_id for result in results}
    missing = [
        SendResult(r["player_id"], Outcome.TRANSIENT, "no_result")
        for r in rows
        if r["player_id"] not in returned
    ]
    return results + missing


def _retry_delay(batch: DeliveryBatch, results: list[SendResult]) -> float:
    backoff = settings.HERALD_RETRY_BASE_SECONDS * 2 ** max(0, batch.attempts - 1)
    retry_after = max((r.retry_after or 0 for r in results), default=0)
    return min(600.0, max(retry_after, backoff * random.uniform(0.8, 1.2)))


def _record(
    batch: DeliveryBatch,
    notification: Notification,
    results: list[SendResult],
    *,
    last: bool = True,
    renew_lease: bool = True,
    listened: bool = True,
) -> None:
    """Record final outcomes and update the counters; with ``last`` (the batch's end) also send the
    batch back for a retry or mark it done. A step before the last (``last=False``) carries no
    transient results, and renews the lease if ``renew_lease``. ``listened``: whether webhooks
    listen to batch outcomes (``batch_events_listened``).

    Counters add the delivery rows this call actually moved out of ``queued``: if the lease of a
    slow batch ran out and another worker sent it too, the second record counts nobody twice.
    """
    now = timezone.now()
    transient = [r for r in results if r.outcome is Outcome.TRANSIENT]
    if transient and batch.attempts >= settings.HERALD_MAX_DELIVERY_ATTEMPTS:
        results = [r for r in results if r.outcome is not Outcome.TRANSIENT] + [
            SendResult(r.player_id, Outcome.ERROR, f"retries_exhausted: {r.reason}"[:64]) for r in transient
        ]
        transient = []
    final: dict[tuple[int, str], list[UUID]] = defaultdict(list)
    for result in results:
        if result.outcome is not Outcome.TRANSIENT:
            final[(OUTCOME_STATUS[result.outcome], result.reason)].append(result.player_id)
    invalid_players: dict[str, list[UUID]] = defaultdict(list)
    badge_counts: dict[int, list[UUID]] = defaultdict(list)
    for result in results:
        if result.outcome is Outcome.INVALID_RECIPIENT and result.reason != "unsubscribed":
            invalid_players[result.reason].append(result.player_id)
        elif result.outcome is Outcome.SENT and BADGE_COUNT in result.extra:
            badge_counts[result.extra[BADGE_COUNT]].append(result.player_id)
    canonical = {
        r.player_id: r.extra[CANONICAL_IDENTIFIER]
        for r in results
        if r.outcome is Outcome.SENT and CANONICAL_IDENTIFIER in r.extra
    }
    delay = _retry_delay(batch, transient) if transient else 0.0
    # The common step writes nothing but _move_to_final's one statement, which is atomic on its
    # own: it runs without BEGIN and COMMIT, one round trip to the database instead of three.
    # Whatever else a record may write must be added here, so that it commits with the rows.
    alone = (
        not (last or renew_lease or invalid_players or badge_counts or canonical)
        and _moves_in_one_statement()
    )
    # Only a statement that is its own transaction may skip the flush wait: inside a caller's
    # transaction, the setting would last to that transaction's end.
    own_transaction = alone and not connection.in_atomic_block
    with contextlib.nullcontext() if alone else transaction.atomic():
        totals = _move_to_final(
            batch, final, now, flush=not own_transaction or settings.HERALD_DELIVERY_STEP_WAITS_FOR_FLUSH
        )
        for reason, player_ids in invalid_players.items():
            # Permanent token failures unsubscribe the player, with the reason: never sent to again.
            Player.objects.filter(pk__in=player_ids).update(
                invalid_identifier=True, notification_types=-2, unsubscribed_reason=reason[:64]
            )
        for badge_count, player_ids in badge_counts.items():
            # The badge a delivered notification set (ios_badgeType SetTo or Increase), so the next
            # Increase builds on it. Written as the value sent, not as an increment: if two
            # notifications raced from the same count, the device shows count + n, and so does this.
            Player.objects.filter(pk__in=player_ids).update(badge_count=badge_count)
        player_identifiers_replace(app_id=notification.app_id, replacements=canonical)
        on_batch_recorded(
            notification=notification, device_type=batch.device_type, results=results, listened=listened
        )
        if not last:
            if renew_lease:
                DeliveryBatch.objects.filter(pk=batch.pk, status=DeliveryBatch.Status.SENDING).update(
                    lease_expires_at=now + timedelta(seconds=settings.HERALD_BATCH_LEASE_SECONDS)
                )
        else:
            batch_outcomes_count(batch, notification)
            if transient:
                retry_at = now + timedelta(seconds=delay)
                DeliveryBatch.objects.filter(pk=batch.pk).update(
                    status=DeliveryBatch.Status.PENDING,
                    available_at=retry_at,
                    enqueued_at=retry_at,
                    lease_expires_at=None,
                )
                transaction.on_commit(lambda: _requeue(batch.pk, delay))
            else:
                DeliveryBatch.objects.filter(pk=batch.pk).update(
                    status=DeliveryBatch.Status.DONE, lease_expires_at=None
                )
                complete_if_done(notification.pk)
    metrics.record_batch(batch, totals, invalid_players, now=now, finished=last and not transient)


# The statuses counted, in the order MOVE_TO_FINAL_SQL returns them.
COUNTED = (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.ERRORED)
# False: the portable form on PostgreSQL too (the tests compare both).
MOVE_IN_ONE_STATEMENT = True
# _move_to_final in one statement: the delivery rows still queued are moved, and the batch's
# uncounted outcomes add what the UPDATE returned (PostgreSQL runs every data-modifying WITH
# exactly once). The batch row is its worker's own, so no other step waits for it.
MOVE_TO_FINAL_SQL = """
WITH outcome (player_id, status, error) AS (
    SELECT * FROM unnest(%(players)s::uuid[], %(statuses)s::smallint[], %(errors)s::varchar[])
), moved AS (
    UPDATE {delivery} AS d
    SET status = o.status, error = o.error, sent_at = CASE WHEN o.status = {sent} THEN %(now)s END
    FROM outcome AS o
    WHERE d.batch_id = %(batch)s AND d.player_id = o.player_id AND d.status = {queued}
    RETURNING d.status
), counted AS (
    SELECT count(*) FILTER (WHERE status = {sent}) AS sent,
           count(*) FILTER (WHERE status = {failed}) AS failed,
           count(*) FILTER (WHERE status = {errored}) AS errored
    FROM moved
), batch AS (
    UPDATE {batch} AS b
    SET uncounted_sent = b.uncounted_sent + c.sent, uncounted_failed = b.uncounted_failed + c.failed,
        uncounted_errored = b.uncounted_errored + c.errored
    FROM counted AS c
    WHERE b.id = %(batch)s AND c.sent + c.failed + c.errored > 0
){commit}
SELECT sent, failed, errored FROM counted{commit_join}
"""
# With HERALD_DELIVERY_STEP_WAITS_FOR_FLUSH off, a step's statement (its own transaction) sets
# synchronous_commit for that transaction only: is_local, so the connection's later commits still
# wait for their flush, and the batch's last record, which is synchronous, flushes every step
# before it.
NO_FLUSH_WAIT = """, no_flush_wait AS (
    SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit
)"""


def _move_to_final(
    batch: DeliveryBatch, final: dict[tuple[int, str], list[UUID]], now, *, flush: bool = True
) -> dict[int, int]:
    """Move the batch's queued delivery rows of ``final`` ((status, reason) → players) to their
    status, and add the rows actually moved to the batch's uncounted outcomes
    (``batch_outcomes_count`` adds those to the counters when the batch ends). Returns the rows
    moved per status. Runs in the record's transaction, or alone when it is the record's only
    write (see _record); alone and without ``flush``, its commit does not wait for the WAL flush.

    On PostgreSQL this is one statement (``MOVE_TO_FINAL_SQL``): a step is recorded every 10
    sends by default, and in a profile of one worker the portable form's statements took longer
    than the sends they recorded.
    """
    totals = dict.fromkeys(OUTCOME_STATUS.values(), 0)
    if not final:
        return totals
    if _moves_in_one_statement():
        outcomes = [(p, status, reason[:64]) for (status, reason), ids in final.items() for p in ids]
        players, statuses, errors = (list(column) for column in zip(*outcomes, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                _move_to_final_sql(flush),
                {"players": players, "statuses": statuses, "errors": errors, "now": now, "batch": batch.pk},
            )
            moved = cursor.fetchone()
        return dict(zip(COUNTED, moved, strict=True))
    for (status, reason), player_ids in final.items():
        totals[status] += Delivery.objects.filter(
            batch=batch, player_id__in=player_ids, status=Delivery.Status.QUEUED
        ).update(status=status, error=reason[:64], sent_at=now if status == Delivery.Status.SENT else None)
    if sum(totals.values()):
        DeliveryBatch.objects.filter(pk=batch.pk).update(
            uncounted_sent=F("uncounted_sent") + totals[Delivery.Status.SENT],
            uncounted_failed=F("uncounted_failed") + totals[Delivery.Status.FAILED],
            uncounted_errored=F("uncounted_errored") + totals[Delivery.Status.ERRORED],
        )
    return totals


def _moves_in_one_statement() -> bool:
    return connection.vendor == "postgresql" and MOVE_IN_ONE_STATEMENT


@functools.cache
def _move_to_final_sql(flush: bool = True) -> str:
    return MOVE_TO_FINAL_SQL.format(
        commit="" if flush else NO_FLUSH_WAIT,
        commit_join="" if flush else ", no_flush_wait",
        delivery=connection.ops.quote_name(Delivery._meta.db_table),
        batch=connection.ops.quote_name(DeliveryBatch._meta.db_table),
        queued=int(Delivery.Status.QUEUED),
        sent=int(Delivery.Status.SENT),
        failed=int(Delivery.Status.FAILED),
        errored=int(Delivery.Status.ERRORED),
    )


def _requeue(batch_id: int, delay: float) -> None:
    from notifications.tasks import deliver_batch_task

    deliver_batch_task.apply_async((batch_id,), countdown=delay)


@transaction.atomic
def _cancel_batch(batch: DeliveryBatch) -> None:
    """A batch claimed after its notification was canceled is not sent; what it held stays in
    ``remaining`` (never attempted), as OneSignal reports canceled notifications."""
    Delivery.objects.filter(batch=batch, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.CANCELED
    )
    batch_outcomes_count(batch, batch.notification)  # what an attempt before the cancel sent
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        status=DeliveryBatch.Status.CANCELED, lease_expires_at=None
    )
