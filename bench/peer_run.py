"""The django-push-notifications side of the peer baseline, in a process of its own:

    DJANGO_SETTINGS_MODULE=bench.peer_settings python -m bench.peer_run JOB.json

bench/peer.py starts it (read that module first). It migrates the library's tables, inserts the
job's devices in bulk, prints ``{"ready": ...}`` and waits for ``go`` on stdin; then it sends the
message through the library's own bulk path (``<Device>.objects.filter(pk__in=...).send_message``
for each ``chunk`` of devices), the only thing on its clock, prints ``{"result": ...}`` (with the
library's exception, if it raised one), deletes the devices it inserted and exits.

The library's gateways have fixed Google and Apple hosts: ``redirect_gateways`` points them at the
gateway simulator, in this process only. Web Push endpoints are the subscriptions' own URLs.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import django

PLATFORMS = ("android", "ios", "web")
INSERT_BATCH = 1000


def redirect_gateways(urls: dict[str, str]) -> None:
    """Every override of the libraries' fixed gateway hosts, here and nowhere else.

    - FCM: firebase-admin (``firebase_admin.messaging._MessagingService.FCM_URL``, a class
      constant) posts to ``https://fcm.googleapis.com/v1/projects/{id}/messages:send``; it becomes
      the simulator's FCM URL. The service also mounts its connection pool (``pool_maxsize=100``)
      on ``https://fcm.googleapis.com`` only, so the same adapter is mounted on the simulator's
      origin too: without that, requests would fall back to its 10-connection default adapter and
      open a new TLS connection for most of the 500 concurrent sends, which Google's host never
      costs it. The OAuth token still comes from the service account's ``token_uri`` (the
      simulator's ``/token``), as firebase-admin always does it.
    - APNs: aioapns connects to ``APNS_SERVER`` (``api.push.apple.com``, or
      ``api.development.push.apple.com`` in the sandbox) on ``APNS_PORT`` 443, class constants of
      ``aioapns.connection``'s protocol classes; both become the simulator's APNs host and port.
      aioapns offers no ALPN in its TLS handshake (Apple's servers speak HTTP/2 to it anyway); the
      simulator chooses HTTP/2 by ALPN only, so the TLS context aioapns makes also offers ``h2``.
      That is one TLS extension, not a cost on either side.

    TLS trust is the environment's: bench/peer.py sets ``REQUESTS_CA_BUNDLE`` (requests: FCM,
    its OAuth token and pywebpush) and ``SSL_CERT_FILE`` (the default SSL context: aioapns) to
    the simulator's CA.
    """
    from urllib.parse import urlsplit

    import requests.adapters
    from aioapns import connection as apns
    from firebase_admin import messaging

    fcm = urls["fcm"].rstrip("/")
    messaging._MessagingService.FCM_URL = fcm + "/v1/projects/{0}/messages:send"
    service_init = messaging._MessagingService.__init__

    def init_with_pool_on_simulator(self, app) -> None:
        service_init(self, app)
        session = self._client.session
        pool: requests.adapters.HTTPAdapter = session.get_adapter("https://fcm.googleapis.com")
        session.mount(fcm, pool)

    messaging._MessagingService.__init__ = init_with_pool_on_simulator

    apns_url = urlsplit(urls["apns"])
    apns.APNsProductionClientProtocol.APNS_SERVER = apns_url.hostname
    apns.APNsDevelopmentClientProtocol.APNS_SERVER = apns_url.hostname
    apns.APNsTLSClientProtocol.APNS_PORT = apns_url.port
    pool_init = apns.APNsKeyConnectionPool.__init__

    def init_offering_h2(self, *args, **kwargs) -> None:
        pool_init(self, *args, **kwargs)
        self.ssl_context.set_alpn_protocols(["h2"])

    apns.APNsKeyConnectionPool.__init__ = init_offering_h2


def _model(platform: str):
    from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

    return {"android": GCMDevice, "ios": APNSDevice, "web": WebPushDevice}[platform]


def insert_devices(platform: str, devices: list[dict], tag: str) -> None:
    """The devices, in bulk and off the clock; ``name`` marks this run's rows."""
    model = _model(platform)
    rows = []
    for device in devices:
        fields = {"name": tag, "registration_id": device["identifier"], "active": True}
        if platform == "android":
            fields["cloud_message_type"] = "FCM"
        elif platform == "web":
            fields.update(p256dh=device["p256dh"], auth=device["auth"], browser="CHROME")
        rows.append(model(**fields))
    model.objects.bulk_create(rows, batch_size=INSERT_BATCH)


def prepare(platform: str, job: dict) -> None:
    """What a long-running django-push-notifications deployment has before it sends: the
    Firebase app initialised, with an OAuth access token (Herald's raw baseline also gets its
    token before its clock starts)."""
    if platform == "android":
        import firebase_admin
        from firebase_admin import credentials

        account = json.loads(job["fcm_service_account_json"])
        app = firebase_admin.initialize_app(credentials.Certificate(account))
        app.credential.get_access_token()


def chunks(platform: str, tag: str, size: int) -> list[list[int]]:
    """The tagged devices' primary keys, ``size`` to a call of the bulk path."""
    pks = list(_model(platform).objects.filter(name=tag).order_by("pk").values_list("pk", flat=True))
    return [pks[start : start + size] for start in range(0, len(pks), size)]


def send(platform: str, job: dict, pks: list[int]) -> int:
    """One call of the library's bulk path; returns how many devices it reports delivered."""
    devices = _model(platform).objects.filter(pk__in=pks)
    content, heading = job["content"], job.get("heading")
    if platform == "android":
        extra = {"title": heading} if heading else {}
        return devices.send_message(content, **extra).success_count
    if platform == "ios":
        from push_notifications.apns_async import Alert

        alert = Alert(title=heading, body=content) if heading else content
        results = devices.send_message(alert)  # raises APNSError if any device failed
        return sum(value == "Success" for result in results for value in result.values())
    # A service worker gets the payload as the page's JSON: the content (and heading) as JSON.
    payload = json.dumps({"body": content, **({"title": heading} if heading else {})})
    return sum(result.get("success", 0) for result in devices.send_message(payload))


def _summary(exc: Exception) -> str:
    """The exception, shortened: APNSError lists every failed device's reason, one by one."""
    text = f"{type(exc).__name__}: {exc}"
    head, marker, reasons = text.partition("errors: ")
    if marker:
        counts = Counter(reason.strip() for reason in reasons.split(","))
        return f"{head}errors: {dict(counts.most_common(5))}"
    return text[:500]


def _say(key: str, value) -> None:
    print(json.dumps({key: value}), flush=True)


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text())
    platform = job["platform"]
    if platform not in PLATFORMS:
        raise SystemExit(f"bench.peer_run: no peer path for {platform!r}")
    redirect_gateways(job["urls"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer_settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "push_notifications", verbosity=0)
    tag = f"herald-peer-{uuid.uuid4().hex[:12]}"
    insert_devices(platform, job["devices"], tag)
    try:
        prepare(platform, job)
        calls = chunks(platform, tag, job["chunk"])
        _say("ready", {"devices": len(job["devices"]), "calls": len(calls)})
        if sys.stdin.readline().strip() != "go":
            return 1
        delivered, error = 0, None
        started = time.perf_counter()
        try:
            for pks in calls:
                delivered += send(platform, job, pks)
        except Exception as exc:  # the library's own failure: reported to the parent, which fails
            error = _summary(exc)
        seconds = time.perf_counter() - started
        result = {"requests": len(job["devices"]), "delivered": delivered, "seconds": seconds}
        _say("result", {**result, "error": error})
    finally:
        _model(platform).objects.filter(name=tag).delete()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
