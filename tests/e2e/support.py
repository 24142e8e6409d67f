"""Helpers shared by the end-to-end delivery modules."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from notifications.models import DeliveryBatch, Notification
from tests.gatewaysim.simulator import Simulator


def settle(timeout: float = 15.0) -> None:
    """Stop what a test left in progress and wait for the batches being sent, so that the flush of
    the test database never races the worker (an error there would fail the next test)."""
    Notification.objects.filter(completed_at__isnull=True, canceled=False).update(
        canceled=True, status=Notification.Status.CANCELED
    )
    DeliveryBatch.objects.filter(status=DeliveryBatch.Status.PENDING).update(
        status=DeliveryBatch.Status.CANCELED
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = DeliveryBatch.objects.filter(
            status=DeliveryBatch.Status.SENDING, lease_expires_at__gt=timezone.now()
        )
        if not live.exists():
            return
        time.sleep(0.1)


# --- the live server's API, as apps' backends, operators and devices call it ---------------------

COMPLETION_TIMEOUT = 90
LOOPBACK = "127.0.0.0/8"  # where the simulators listen: allowed past the SSRF guard in tests


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON, or None
    text: str  # the raw body, for "this never appears in a response" checks
    headers: dict[str, str]


RATE_LIMIT_RETRIES = 5


def call(
    method: str,
    url: str,
    body: Any = None,
    *,
    key: str | None = None,
    authorization: str | None = None,
) -> Answer:
    """One HTTP request to the live server: JSON in and out, with ``Authorization: Key <key>``
    if ``key`` is given, or ``authorization`` as it is (an OAuth bearer token).

    A 429 is waited out for its ``Retry-After`` and asked again, as a well-behaved client does:
    a test that polls a notification and then reads it several times can pass the read bucket's
    10/s on a fast machine, and that is the limiter working, not the test's subject."""
    for _ in range(RATE_LIMIT_RETRIES):
        answer = _call_once(method, url, body, authorization or (f"Key {key}" if key else None))
        if answer.status != 429 or "Retry-After" not in answer.headers:
            return answer
        time.sleep(float(answer.headers["Retry-After"]))
    return answer


def _call_once(method: str, url: str, body: Any, authorization: str | None) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the live server
    if authorization:
        request.add_header("Authorization", authorization)
    if data is not None:
        request.add_header("Content-Type", "application/json; charset=UTF-8")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            raw, status, headers = answer.read(), answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, dict(error.headers)
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw or b"null")
    except ValueError:
        parsed = None
    return Answer(status, parsed, text, headers)


@dataclass
class HeraldApi:
    """One app on the live server: its backend (App key), its operator (User key), its devices
    (no key)."""

    root: str  # live_server.url + "/api/v1"
    app_id: str
    app_key: str
    user_key: str

    def call(self, method: str, path: str, body: Any = None, *, keyed: bool = True) -> Answer:
        return call(method, self.root + path, body, key=self.app_key if keyed else None)

    def configure(self, fields: dict[str, Any]) -> Answer:
        """``PUT /apps/{id}`` with the User key, as an operator uploads credentials."""
        return call("PUT", f"{self.root}/apps/{self.app_id}", fields, key=self.user_key)

    def register(self, device_type: int, identifier: str, **fields: Any) -> str:
        """``POST /players`` as an SDK does (no key); returns the player id."""
        body = {"app_id": self.app_id, "device_type": device_type, "identifier": identifier, **fields}
        answer = self.call("POST", "/players", body, keyed=False)
        assert answer.status == 200, answer.body
        return answer.body["id"]

    def subscribe_web(self, sim: Simulator, device_type: int, **fields: Any) -> tuple[str, dict]:
        """A browser subscribing at the simulator's push service with the app's VAPID public key
        (what the web SDK fetches first), then registering; returns (player id, subscription)."""
        answer = self.call("GET", f"/apps/{self.app_id}/web_push_public_key", keyed=False)
        assert answer.status == 200, answer.body
        subscription = sim.webpush_subscription(application_server_key=answer.body["vapid_public_key"])
        keys = subscription["keys"]
        player_id = self.register(
            device_type, subscription["endpoint"], web_auth=keys["auth"], web_p256=keys["p256dh"], **fields
        )
        return player_id, subscription

    def post_notification(self, **fields: Any) -> Answer:
        return self.call("POST", "/notifications", {"app_id": self.app_id, **fields})

    def send(self, **fields: Any) -> str:
        """``POST /notifications`` that must be accepted; returns the notification id."""
        answer = self.post_notification(**fields)
        assert answer.status == 200 and answer.body["id"], answer.body
        return answer.body["id"]

    def notification(self, notification_id: str) -> dict:
        answer = self.call("GET", f"/notifications/{notification_id}?app_id={self.app_id}")
        assert answer.status == 200, answer.body
        return answer.body

    def wait_completed(
        self, notification_id: str, worker: subprocess.Popen, timeout: float = COMPLETION_TIMEOUT
    ) -> dict:
        """GET the notification until ``completed_at`` is set; fails with the worker's log."""
        deadline = time.monotonic() + timeout
        while True:
            notification = self.notification(notification_id)
            if notification["completed_at"] is not None:
                return notification
            log = worker.log_path  # type: ignore[attr-defined]
            if worker.poll() is not None:
                pytest.fail(f"celery worker died:\n{log.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not completed after {timeout}s: {notification}\n{log.read_text()[-5000:]}")
            time.sleep(0.2)


# --- one simulator for every gateway ---------------------------------------------------------------


def every_gateway_env(sim: Simulator, *, public_url: str, retry_base_ms: int = 200) -> dict[str, str]:
    """A worker's environment that sends every channel to ``sim`` (APNs production and sandbox,
    FCM, Web Push, SMTP, the SMS gateway, WNS) and links emails back to ``public_url``."""
    return {
        "HERALD_APNS_PRODUCTION_URL": sim.apns_url,
        "HERALD_APNS_SANDBOX_URL": sim.apns_url,
        "HERALD_FCM_BASE_URL": sim.fcm_url,
        "HERALD_WNS_TOKEN_URL": sim.wns_token_url,
        "HERALD_GATEWAY_CA_FILE": str(sim.ca_path),
        "HERALD_ALLOWED_PRIVATE_NETWORKS": LOOPBACK,
        "HERALD_UNSUBSCRIBE_BASE_URL": public_url,
        "HERALD_RETRY_BASE_MS": str(retry_base_ms),
    }


def use_every_gateway(settings, sim: Simulator, *, retry_base_ms: int = 200) -> None:
    """This process (the live server) configured as ``every_gateway_env`` configures the worker:
    the API checks web push endpoints against the SSRF allow-list when players register."""
    settings.HERALD_APNS_PRODUCTION_URL = sim.apns_url
    settings.HERALD_APNS_SANDBOX_URL = sim.apns_url
    settings.HERALD_FCM_BASE_URL = sim.fcm_url
    settings.HERALD_WNS_TOKEN_URL = sim.wns_token_url
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = [LOOPBACK]
    settings.HERALD_RETRY_BASE_SECONDS = retry_base_ms / 1000


FCM_PROJECT_ID = "herald-sim"


def every_channel_credentials(
    sim: Simulator,
    *,
    apns_key: tuple[str, str, str],
    bundle_id: str,
    smtp_password: str | None = None,
    sms_api_key: str | None = None,
    wns_client_secret: str | None = None,
) -> dict[str, Any]:
    """``PUT /apps/{id}`` fields wiring an app to ``sim`` on every channel: APNs (``apns_key``, as
    ``Simulator.apns_key`` returns it), FCM (a new service account the simulator verifies), SMTP,
    the HTTP SMS gateway (``apiKey``, ``to``, ``text`` and ``from`` parameters) and WNS (a new
    Package SID registered with ``wns_client_secret``); secrets not given are random. Web Push
    needs nothing: every app has a VAPID key pair."""
    key_id, team_id, p8 = apns_key
    smtp_password = smtp_password or secrets.token_urlsafe(16)
    sms_api_key = sms_api_key or secrets.token_urlsafe(16)
    wns_client_secret = wns_client_secret or secrets.token_urlsafe(16)
    package_sid = f"ms-app://s-1-15-2-{secrets.randbelow(10**10)}"
    sim.register_wns_app(package_sid, wns_client_secret)
    parameters = [
        {"name": "apiKey", "value": sms_api_key},
        {"name": "to", "value": "{phoneNumber}"},
        {"name": "text", "value": "{message}"},
        {"name": "from", "value": "{from}"},
    ]
    return {
        "apns_env": "production",
        "apns_key_id": key_id,
        "apns_team_id": team_id,
        "apns_p8": p8,
        "apns_bundle_id": bundle_id,
        "fcm_v1_service_account_json": sim.fcm_service_account(FCM_PROJECT_ID),
        "smtp_host": sim.smtp_host,
        "smtp_port": sim.smtp_port,
        "smtp_username": "herald",
        "smtp_password": smtp_password,
        "email_from_address": "news@herald.test",
        "email_from_name": "Herald News",
        "sms_gateway": sim.sms_gateway("/cgi-bin/sendsms", parameters=parameters),
        "wns_package_sid": package_sid,
        "wns_client_secret": wns_client_secret,
    }
