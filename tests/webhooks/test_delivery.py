"""Delivery of webhook calls to a real HTTP receiver on a loopback socket."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import make_tenant
from tests.webhooks.receiver import running_receiver
from tests.webhooks.support import make_due, make_webhook
from webhooks.delivery import (
    LEASE,
    backoff_seconds,
    body_bytes,
    signature,
    verify_signature,
    webhook_call_deliver,
    webhook_calls_sweep,
)
from webhooks.models import WebhookCall
from webhooks.services import webhook_event_emit

ENTITY = {"applicationId": "app1", "deviceId": "device1", "platform": "G", "token": "t1", "userId": "u1"}


def emit_one(tenant, hook, django_capture_on_commit_callbacks, event="onDeviceRegister") -> WebhookCall:
    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_emit(app=tenant.app, event_type=event, entity=ENTITY)
    return WebhookCall.objects.get(webhook=hook)


def test_it_posts_the_signed_event_to_the_receiver(
    own, receiver, enqueued, django_capture_on_commit_callbacks
):
    hook = make_webhook(own.app, url=receiver.url)
    call = emit_one(own, hook, django_capture_on_commit_callbacks)
    assert enqueued == [call.pk]

    assert webhook_call_deliver(call_id=call.pk) is None

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-herald-event"] == "onDeviceRegister"
    assert request.headers["x-herald-delivery"] == str(call.pk)
    body = json.loads(request.body)
    assert body == {
        "applicationId": str(own.app.pk),  # no MobileFirst id yet: the OneSignal app id (§1.4)
        "entity": ENTITY,
        "eventTimeStamp": body["eventTimeStamp"],
        "type": "onDeviceRegister",
    }
    assert abs(body["eventTimeStamp"] - time.time() * 1000) < 60_000
    assert request.body == body_bytes(call.payload)
    assert verify_signature(hook.secret, request.headers["x-herald-signature"], request.body)
    call.refresh_from_db()
    assert call.status == WebhookCall.Status.DELIVERED
    assert (call.attempts, call.last_status_code, call.last_error) == (1, 200, "")
    assert call.delivered_at is not None


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body(own):
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", 1700000000, body) == f"t=1700000000,v1={expected}"


def test_verification_refuses_a_tampered_body_a_wrong_secret_and_a_stale_timestamp():
    body = b'{"type":"onDeviceRegister"}'
    now = time.time()
    header = signature("s3cret", int(now), body)
    assert verify_signature("s3cret", header, body, now=now)
    assert not verify_signature("s3cret", header, body + b" ", now=now)
    assert not verify_signature("other", header, body, now=now)
    assert not verify_signature("s3cret", header, body, now=now + 301)
    assert not verify_signature("s3cret", "", body, now=now)
    assert not verify_signature("s3cret", "t=abc,v1=00", body, now=now)


def test_it_retries_with_backoff_until_the_receiver_recovers(own, loopback_allowed, enqueued):
    with running_receiver(statuses=[503, 500]) as receiver:
        hook = make_webhook(own.app, url=receiver.url)
        webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
        call = WebhookCall.objects.get(webhook=hook)

        first = webhook_call_deliver(call_id=call.pk)
        call.refresh_from_db()
        assert first is not None and first > 0
        assert (call.status, call.attempts, call.last_status_code, call.last_error) == (
            WebhookCall.Status.PENDING,
            1,
            503,
            "HTTP 503",
        )
        assert call.next_attempt_at > timezone.now() + timedelta(seconds=first * 0.9)
        # The retry's countdown has not elapsed: a task now (a duplicate, or early) does nothing.
        assert webhook_call_deliver(call_id=call.pk) is None
        assert len(receiver.requests) == 1

        make_due(call)
        assert webhook_call_deliver(call_id=call.pk) is not None
        make_due(call)
        assert webhook_call_deliver(call_id=call.pk) is None

    call.refresh_from_db()
    assert (call.status, call.attempts, call.last_status_code) == (WebhookCall.Status.DELIVERED, 3, 200)
    assert [r.headers["x-herald-delivery"] for r in receiver.requests] == [str(call.pk)] * 3
    assert len({r.body for r in receiver.requests}) == 1  # the same event every time
    for request in receiver.requests:
        assert verify_signature(hook.secret, request.headers["x-herald-signature"], request.body)


def test_it_gives_up_after_five_attempts(own, loopback_allowed, enqueued):
    with running_receiver(default_status=500) as receiver:
        hook = make_webhook(own.app, url=receiver.url)
        webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
        call = WebhookCall.objects.get(webhook=hook)
        countdowns = []
        for _ in range(5):
            countdowns.append(webhook_call_deliver(call_id=call.pk))
            make_due(call)
        assert webhook_call_deliver(call_id=call.pk) is None  # failed: nothing more
    assert countdowns[-1] is None and all(c is not None for c in countdowns[:-1])
    assert len(receiver.requests) == 5
    call.refresh_from_db()
    assert (call.status, call.attempts, call.last_status_code, call.last_error) == (
        WebhookCall.Status.FAILED,
        5,
        500,
        "HTTP 500",
    )
    assert call.delivered_at is None
    assert hook.secret not in call.last_error


def test_backoff_doubles_with_jitter(settings):
    settings.HERALD_WEBHOOK_RETRY_BASE_SECONDS = 10
    for attempts, low, high in [(1, 5, 15), (2, 10, 30), (3, 20, 60), (4, 40, 120)]:
        samples = [backoff_seconds(attempts) for _ in range(200)]
        assert all(low <= s < high for s in samples), (attempts, min(samples), max(samples))
        assert len(set(samples)) > 100  # jittered, not a fixed schedule


def test_a_delivered_call_is_never_sent_again(own, receiver, enqueued):
    hook = make_webhook(own.app, url=receiver.url)
    webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
    call = WebhookCall.objects.get(webhook=hook)
    webhook_call_deliver(call_id=call.pk)
    # A redelivered message (acks_late, worker lost after the POST) finds the row done.
    assert webhook_call_deliver(call_id=call.pk) is None
    assert len(receiver.requests) == 1


def test_an_attempt_in_progress_is_not_taken_twice_until_its_lease_expires(own, receiver, enqueued):
    hook = make_webhook(own.app, url=receiver.url)
    webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
    call = WebhookCall.objects.get(webhook=hook)
    WebhookCall.objects.filter(pk=call.pk).update(
        status=WebhookCall.Status.SENDING, attempts=1, next_attempt_at=timezone.now()
    )
    assert webhook_call_deliver(call_id=call.pk) is None
    assert receiver.requests == []

    # The worker holding it died: once the lease is over, the attempt is made again.
    WebhookCall.objects.filter(pk=call.pk).update(
        next_attempt_at=timezone.now() - LEASE - timedelta(seconds=1)
    )
    assert webhook_call_deliver(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.status, call.attempts, len(receiver.requests)) == (WebhookCall.Status.DELIVERED, 2, 1)


def test_a_stale_worker_cannot_overwrite_the_attempt_that_took_over(own, receiver, enqueued, monkeypatch):
    """The first attempt's POST outlived its lease and another worker took over and delivered:
    the first one's late result is not recorded over the second's."""
    from webhooks import delivery

    hook = make_webhook(own.app, url=receiver.url)
    webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
    call = WebhookCall.objects.get(webhook=hook)
    real_post = delivery.post_json

    def post_then_lose_the_lease(*args, **kwargs):
        result = real_post(*args, **kwargs)
        WebhookCall.objects.filter(pk=call.pk).update(attempts=2, status=WebhookCall.Status.DELIVERED)
        return delivery.Attempt(500, "HTTP 500") if result.ok else result

    monkeypatch.setattr(delivery, "post_json", post_then_lose_the_lease)
    assert webhook_call_deliver(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.status, call.attempts, call.last_status_code) == (WebhookCall.Status.DELIVERED, 2, None)


def test_it_refuses_a_loopback_url_at_delivery_unless_the_deployment_allows_it(own, settings, enqueued):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    with running_receiver() as receiver:
        # Saved while allowed (or DNS changed since): the rule is checked again when sending.
        hook = make_webhook(own.app, url=receiver.url)
        webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
        call = WebhookCall.objects.get(webhook=hook)
        assert webhook_call_deliver(call_id=call.pk) is None
    assert receiver.requests == []
    call.refresh_from_db()
    assert call.status == WebhookCall.Status.FAILED  # permanent: not retried
    assert call.attempts == 1
    assert "non-public address" in call.last_error and "loopback" in call.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/hook",
        "http://[::ffff:127.0.0.1]/",
        "ftp://x/",
    ],
)
def test_it_never_connects_to_metadata_or_disguised_loopback(own, loopback_allowed, enqueued, url):
    loopback_allowed.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    hook = make_webhook(own.app, url=url)
    webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
    call = WebhookCall.objects.get(webhook=hook)
    webhook_call_deliver(call_id=call.pk)
    call.refresh_from_db()
    assert call.status == WebhookCall.Status.FAILED
    assert call.last_error.startswith("refused:")


def test_it_does_not_follow_redirects(own, loopback_allowed, enqueued):
    with (
        running_receiver(default_status=302) as target,
        running_receiver(default_status=307, location=None) as receiver,
    ):
        receiver.location = target.url
        hook = make_webhook(own.app, url=receiver.url)
        webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
        call = WebhookCall.objects.get(webhook=hook)
        assert webhook_call_deliver(call_id=call.pk) is not None  # a 3xx is a failed attempt
    assert len(receiver.requests) == 1
    assert target.requests == []
    call.refresh_from_db()
    assert (call.status, call.last_status_code, call.last_error) == (
        WebhookCall.Status.PENDING,
        307,
        "HTTP 307",
    )


def test_an_attempt_is_cut_off_at_the_timeout(own, loopback_allowed, enqueued):
    loopback_allowed.HERALD_WEBHOOK_TIMEOUT_SECONDS = 1
    with running_receiver(delay=3) as receiver:
        hook = make_webhook(own.app, url=receiver.url)
        webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
        call = WebhookCall.objects.get(webhook=hook)
        started = time.monotonic()
        assert webhook_call_deliver(call_id=call.pk) is not None
        assert time.monotonic() - started < 2.5
    call.refresh_from_db()
    assert call.status == WebhookCall.Status.PENDING
    assert call.last_status_code is None
    assert call.last_error.startswith("network error 28")  # CURLE_OPERATION_TIMEDOUT


def test_a_refused_connection_is_retried(own, loopback_allowed, enqueued):
    with running_receiver() as gone:
        url = gone.url
    hook = make_webhook(own.app, url=url)
    webhook_event_emit(app=own.app, event_type="onDeviceRegister", entity=ENTITY)
    call = WebhookCall.objects.get(webhook=hook)
    assert webhook_call_deliver(call_id=call.pk) is not None
    call.refresh_from_db()
    assert call.status == WebhookCall.Status.PENDING
    assert call.last_error.startswith("network error 7")  # CURLE_COULDNT_CONNECT


def test_the_sweep_reenqueues_calls_whose_task_was_lost(own, enqueued):
    hook = make_webhook(own.app, url="https://hooks.example.com/x")
    now = timezone.now()
    lost = WebhookCall.objects.create(
        webhook=hook, event_type="onDeviceRegister", payload={}, next_attempt_at=now - timedelta(minutes=5)
    )
    waiting = WebhookCall.objects.create(
        webhook=hook, event_type="onDeviceRegister", payload={}, next_attempt_at=now + timedelta(minutes=5)
    )
    dead_worker = WebhookCall.objects.create(
        webhook=hook,
        event_type="onDeviceRegister",
        payload={},
        status=WebhookCall.Status.SENDING,
        next_attempt_at=now - LEASE - timedelta(seconds=1),
    )
    WebhookCall.objects.create(
        webhook=hook, event_type="onDeviceRegister", payload={}, status=WebhookCall.Status.DELIVERED
    )
    assert webhook_calls_sweep(now=now) == 2
    assert sorted(enqueued) == sorted([lost.pk, dead_worker.pk])
    assert waiting.pk not in enqueued
    # Just re-enqueued: the next sweep leaves it to its task.
    enqueued.clear()
    assert webhook_calls_sweep(now=now + timedelta(seconds=10)) == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_call_send_it_once(loopback_allowed, enqueued):
    tenant = make_tenant()
    with running_receiver(delay=0.5) as receiver:
        hook = make_webhook(tenant.app, url=receiver.url)
        webhook_event_emit(app=tenant.app, event_type="onDeviceRegister", entity=ENTITY)
        call = WebhookCall.objects.get(webhook=hook)
        barrier = threading.Barrier(2)

        def worker():
            try:
                barrier.wait()
                webhook_call_deliver(call_id=call.pk)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(receiver.requests) == 1
    call.refresh_from_db()
    assert (call.status, call.attempts) == (WebhookCall.Status.DELIVERED, 1)
