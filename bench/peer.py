"""The peer baseline: django-push-notifications (PyPI ``django-push-notifications``, pinned in
constraints.txt) sending the same message to the same identities, against the same sink, through
its own bulk send path, for the "at least 10 times django-push-notifications" goal of issue 7.

    from bench.peer import peer_baseline
    result = peer_baseline(platform, app, identities, body, sim, database_url=database_url)
    result.per_second  # a bench.raw.RawResult, as raw_baseline returns

The library is a Django app with its own models and settings, so it runs in a subprocess
(``python -m bench.peer_run``, settings ``bench.peer_settings``), whose ``push_notifications_*``
tables are migrated into ``database_url``. What the child's clock covers, and what the sink CPU
is read around, is the library's bulk path and nothing else, called once per ``PEER_CHUNK``
devices (a queryset of their primary keys, listed before the clock starts):

- android: ``GCMDevice.objects.filter(...).send_message(content)``: firebase-admin's
  ``messaging.send_each`` per chunk of ``FCM_MAX_RECIPIENTS`` (set to 500, see
  ``FCM_MAX_RECIPIENTS``), each message its own HTTP/1.1 request from a pool of up to 500
  threads (requests);
- ios: ``APNSDevice.objects.filter(...).send_message(content)``: aioapns, HTTP/2, token auth;
- web: ``WebPushDevice.objects.filter(...).send_message(json)``: pywebpush, one request per
  device, one after another (requests, HTTP/1.1).

The gateway simulator answers HTTP/1.1 as well as HTTP/2 on every port (it picks by TLS ALPN,
gatewaysim/httpserver.py). How the libraries' fixed Google and Apple hosts are pointed at it is in
``bench.peer_run.redirect_gateways``. Every run is checked against the simulator's own counters:
it must have accepted exactly one request per identity, or ``PeerFailed`` is raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.raw import RawResult
from bench.stack import ROOT, stop
from players.seeding import Identity, Platform

PEER_PLATFORMS = ("android", "ios", "web")
# firebase-admin's send_each refuses more than 500 messages per call, and django-push-notifications
# chunks by FCM_MAX_RECIPIENTS, whose default (1000, the legacy FCM API's limit) makes every send to
# more than 500 devices raise ValueError before a request goes out. 500 is the largest that works.
FCM_MAX_RECIPIENTS = 500
# Devices per call of the bulk path (a queryset of that many). The APNs path sends every device of
# a call at once, each under a 1-second timeout of the library's own (asyncio.wait_for in
# push_notifications.apns_async._send_request), waiting for a connection included. Against the
# simulator, 4,305 of 5,000 devices in one call timed out (it raised APNSError), and 11 of 5,000
# sent 1,000 per call; 500 per call delivered them all. FCM goes out 500 at a time whatever the
# call, and Web Push one device after another, so the chunk changes little for them.
PEER_CHUNK = 500
TIMEOUT_SECONDS = 1800


class PeerFailed(RuntimeError):
    pass


def peer_baseline(
    platform: Platform,
    app,
    identities: list[Identity],
    body: dict,
    sink,
    *,
    database_url: str,
    chunk: int = PEER_CHUNK,
) -> RawResult:
    """Send ``body``'s content to ``identities`` with django-push-notifications' bulk path.

    ``platform`` is android (FCM), ios (APNs) or web (Chrome Web Push); any other platform raises
    ``ValueError`` (the library has no email or SMS, and its WNS path is not wired to the
    simulator). ``app`` is the Herald App ``bootstrap_demo`` wired to the simulator: its FCM
    service account (whose ``token_uri`` is the simulator's), APNs p8 key, key id, team id, bundle
    id and environment, VAPID key and subject. ``sink`` has ``urls`` (``"fcm"``, ``"apns"``,
    ``"control"``), ``ca_path``, ``cpu_seconds()`` and ``stats()``, as ``bench.stack.Simulator``
    and ``bench.nginx.NginxSink``.
    ``database_url`` is where the library's tables go (Herald's bench database will do).
    ``chunk``: devices per call of the bulk path (``PEER_CHUNK``).

    Returns requests, the seconds of the send alone (the devices are inserted before the clock
    starts and deleted after it stops) and the simulator's CPU-seconds over the same span.
    Raises ``PeerFailed`` if the library reports a failure or the simulator accepted a different
    number of requests than there are identities.
    """
    if platform.name not in PEER_PLATFORMS:
        raise ValueError(f"no django-push-notifications peer for {platform.name}")
    if not identities:
        return RawResult(platform.name, 0, 0.0, 0.0)
    with tempfile.TemporaryDirectory(prefix="herald-peer-") as work:
        work_dir = Path(work)
        job = work_dir / "job.json"
        job.write_text(json.dumps({**_job(platform, app, identities, body, sink), "chunk": chunk}))
        settings = work_dir / "push_settings.json"
        settings.write_text(json.dumps(_push_settings(platform, app, work_dir)))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.peer_settings",
            "DATABASE_URL": database_url,
            "HERALD_PEER_PUSH_SETTINGS": str(settings),
            # Trust the simulator's CA: requests (FCM, its OAuth token, Web Push) reads the
            # first, the default SSL context (aioapns) the second.
            "REQUESTS_CA_BUNDLE": str(sink.ca_path),
            "SSL_CERT_FILE": str(sink.ca_path),
        }
        env.pop("CURL_CA_BUNDLE", None)  # requests prefers it over REQUESTS_CA_BUNDLE
        log = work_dir / "peer.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.peer_run", str(job)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        watchdog = threading.Timer(TIMEOUT_SECONDS, process.kill)
        watchdog.start()
        try:
            result, sink_cpu, accepted = _timed_send(process, sink, platform, log)
        finally:
            watchdog.cancel()
            stop(process)
    _check(platform, len(identities), result, accepted)
    return RawResult(platform.name, len(identities), result["seconds"], sink_cpu)


def _timed_send(process: subprocess.Popen, sink, platform: Platform, log: Path) -> tuple[dict, float, int]:
    """Let the child send, reading the sink's CPU and counters around it.

    The child reports ``ready`` once its devices are in and its clients are set up (the FCM
    token fetched), then sends only when told ``go``, and reports ``result`` as soon as the
    library returns. The sink's CPU and counters are read just before ``go`` and just after
    ``result``: in between the sink serves nothing but this send (plus two pipe messages' worth
    of idle time), so its CPU delta is the cost of the library's requests, and the child's own
    perf_counter span is the send alone.
    """
    _expect(process, "ready", log)
    accepted_before = _accepted(sink, platform)
    cpu_before = sink.cpu_seconds()
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    result = _expect(process, "result", log)
    sink_cpu = sink.cpu_seconds() - cpu_before
    accepted = _accepted(sink, platform) - accepted_before
    process.stdin.close()
    if process.wait(TIMEOUT_SECONDS) != 0:
        raise PeerFailed(f"bench.peer_run exited {process.returncode}:\n{_tail(log)}")
    return result, sink_cpu, accepted


def _expect(process: subprocess.Popen, key: str, log: Path) -> dict:
    assert process.stdout is not None
    line = process.stdout.readline()
    with contextlib.suppress(ValueError):
        message = json.loads(line)
        if key in message:
            return message[key]
    process.wait(10)
    raise PeerFailed(f"bench.peer_run: expected {key!r}, got {line!r}; exit {process.poll()}\n{_tail(log)}")


def _accepted(sink, platform: Platform) -> int:
    """What the sink accepted so far: the simulator's counters, or nginx's access log."""
    return sink.stats()[platform.simulator]["accepted"]


def _check(platform: Platform, sent: int, result: dict, accepted: int) -> None:
    if result["error"] or result["delivered"] != sent or accepted != sent:
        raise PeerFailed(
            f"django-push-notifications {platform.name}: {sent} identities, the library reported "
            f"{result['delivered']} delivered, the simulator accepted {accepted}; "
            f"error: {result['error']}"
        )


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]


def _job(platform: Platform, app, identities: list[Identity], body: dict, sink) -> dict:
    contents = body.get("contents") or {}
    headings = body.get("headings") or {}
    return {
        "platform": platform.name,
        "urls": {"fcm": sink.urls["fcm"], "apns": sink.urls["apns"]},
        "content": contents.get("en"),
        "heading": headings.get("en"),
        "devices": [
            {"identifier": i.identifier, "p256dh": i.web_p256, "auth": i.web_auth} for i in identities
        ],
        # firebase-admin is initialised with the service account in the child, not from settings.
        "fcm_service_account_json": app.fcm_service_account_json if platform.name == "android" else None,
    }


def _push_settings(platform: Platform, app, work: Path) -> dict:
    """The library's legacy (single-app) ``PUSH_NOTIFICATIONS_SETTINGS`` for ``app``: only what
    ``platform`` needs. The APNs key goes to a file, as the library takes a path."""
    if platform.name == "android":
        return {"FCM_MAX_RECIPIENTS": FCM_MAX_RECIPIENTS}
    if platform.name == "ios":
        key = work / "apns.p8"
        key.write_text(app.apns_p8)
        return {
            "APNS_AUTH_KEY_PATH": str(key),
            "APNS_AUTH_KEY_ID": app.apns_key_id,
            "APNS_TEAM_ID": app.apns_team_id,
            "APNS_TOPIC": app.apns_bundle_id,
            "APNS_USE_SANDBOX": app.apns_env == "sandbox",
        }
    from notifications.providers.webpush import vapid_subject

    # The library's VAPID key is base64url of the raw key or DER: the app's stored form is the former.
    return {"WP_PRIVATE_KEY": app.vapid_private_key, "WP_CLAIMS": {"sub": vapid_subject(app)}}
