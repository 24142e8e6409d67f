"""Run ``python -m gatewaysim`` as a real subprocess and drive its control API, for any test.

    from tests.gatewaysim.simulator import running_simulator

    with running_simulator(tmp_path) as sim:
        account = sim.fcm_service_account(project_id="demo")  # Google's service-account JSON, as a dict
        # ... configure Herald with `account` (its token_uri is the simulator's), sim.fcm_url and
        # sim.ca_path, then send ...
        assert sim.stats()["fcm"]["accepted"] == 3
        [delivery] = sim.deliveries(token="device-1")
        sim.faults(fail_first={"UNAVAILABLE": 1}, retry_after=1)  # platform="fcm" by default
        sim.reset()

The simulator listens on free ports (port 0), keeps its CA in ``<tmp_path>/gatewaysim``, stops
on SIGTERM when the block exits, and also stops by itself if the test process dies
(``--exit-with-parent``), so no simulator outlives its test run. Only the standard library and
the project's pinned dependencies (PyJWT, cryptography) are used.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PROJECT_DIR = Path(__file__).resolve().parents[2]
READY_LINE = "gatewaysim ready"
READY_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class SimulatorError(RuntimeError):
    pass


@dataclass
class ControlResponse:
    status: int
    body: Any


@dataclass
class Simulator:
    """A running simulator: its addresses, and the control API as methods."""

    process: subprocess.Popen[str]
    addresses: dict[str, str]
    ca_path: Path
    state_dir: Path
    output: list[str] = field(default_factory=list)

    @property
    def fcm_url(self) -> str:
        """``https://127.0.0.1:<port>``: FCM's base URL (``/v1/projects/...``) and ``/token``."""
        return self.addresses["fcm"]

    @property
    def fcm_token_uri(self) -> str:
        return self.addresses["fcm"] + "/token"

    @property
    def control_url(self) -> str:
        return self.addresses["control"]

    @property
    def log_path(self) -> Path:
        """The simulator's stderr (hypercorn warnings and tracebacks)."""
        return self.state_dir / "gatewaysim.log"

    # --- control API ---------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, int]]:
        """``{"fcm": {"received", "accepted", "rejected", "duplicates"}, "apns": {...}, ...}``."""
        return self.control("GET", "/_sim/stats", expect=200).body

    def deliveries(
        self, token: str | None = None, *, platform: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Recorded requests, oldest first, each ``{platform, token, status, headers, payload,
        received_at, duplicate}``; ``limit`` keeps the most recent ones."""
        query = {"platform": platform, "token": token, "limit": limit}
        path = "/_sim/deliveries?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return self.control("GET", path, expect=200).body["deliveries"]

    def faults(self, platform: str = "fcm", **config: Any) -> dict[str, Any]:
        """Replace ``platform``'s fault plan (``error_rates``, ``retry_after``, ``latency_ms``,
        ``token_errors``, ``fail_first``, ``seed``); no keyword arguments clears it."""
        return self.control("POST", "/_sim/faults", {"platform": platform, **config}, expect=200).body

    def reset(self, *, keep_tokens: bool = False) -> None:
        """Clear deliveries, stats, faults and (unless ``keep_tokens``) issued OAuth tokens."""
        self.control("POST", "/_sim/reset", {"keep_tokens": keep_tokens}, expect=200)

    def register_fcm_account(self, client_email: str, public_key_pem: str) -> None:
        """Make the token endpoint verify ``client_email``'s JWT signatures with this key."""
        self.control(
            "POST",
            "/_sim/fcm/accounts",
            {"client_email": client_email, "public_key_pem": public_key_pem},
            expect=201,
        )

    def control(
        self, method: str, path: str, body: Any = None, *, expect: int | None = None
    ) -> ControlResponse:
        """One control-API call; raises SimulatorError if the status is not ``expect``."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.control_url + path, data=data, method=method)  # noqa: S310
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                response = ControlResponse(answer.status, json.loads(answer.read() or b"null"))
        except urllib.error.HTTPError as error:
            response = ControlResponse(error.code, json.loads(error.read() or b"null"))
        if expect is not None and response.status != expect:
            raise SimulatorError(f"{method} {path} answered {response.status}: {response.body}")
        return response

    # --- FCM credentials -----------------------------------------------------------------------

    def fcm_service_account(
        self, project_id: str = "herald-sim", *, client_email: str | None = None, register: bool = True
    ) -> dict[str, Any]:
        """A new service account in Google's JSON key-file format, its ``token_uri`` the simulator's.

        With ``register`` (the default) its public key is registered, so the simulator verifies
        the signatures of its token requests as Google would.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        client_email = client_email or f"sim-{uuid.uuid4().hex[:12]}@{project_id}.iam.gserviceaccount.com"
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        if register:
            public_pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self.register_fcm_account(client_email, public_pem.decode())
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": uuid.uuid4().hex,
            "private_key": private_pem,
            "client_email": client_email,
            "client_id": str(uuid.uuid4().int)[:21],
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.fcm_token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "",
            "universe_domain": "googleapis.com",
        }

    def fcm_assertion(self, account: dict[str, Any], **claims: Any) -> str:
        """The JWT google-auth would sign for ``account``; ``claims`` override or add (None drops)."""
        now = int(time.time())
        payload = {
            "iss": account["client_email"],
            "aud": account["token_uri"],
            "scope": FCM_SCOPE,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload, account["private_key"], algorithm="RS256", headers={"kid": account["private_key_id"]}
        )

    def fcm_token_request(self, assertion: str, grant_type: str | None = None) -> ControlResponse:
        """POST the assertion to the simulator's token endpoint, as google-auth does."""
        form = urllib.parse.urlencode(
            {
                "grant_type": grant_type or "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            }
        ).encode()
        request = urllib.request.Request(self.fcm_token_uri, data=form, method="POST")  # noqa: S310
        request.add_header("content-type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as answer:  # noqa: S310
                return ControlResponse(answer.status, json.loads(answer.read()))
        except urllib.error.HTTPError as error:
            return ControlResponse(error.code, json.loads(error.read() or b"null"))

    def fcm_access_token(self, account: dict[str, Any] | None = None) -> str:
        """An access token for ``messages:send`` (a fresh registered account if none is given)."""
        account = account or self.fcm_service_account()
        response = self.fcm_token_request(self.fcm_assertion(account))
        if response.status != 200:
            raise SimulatorError(f"/token answered {response.status}: {response.body}")
        return response.body["access_token"]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))

    # --- APNs -----------------------------------------------------------------------------------

    @property
    def apns_url(self) -> str:
        """``https://127.0.0.1:<port>``: APNs' base URL (``/3/device/<token>``)."""
        return self.addresses["apns"]

    def apns_key(
        self,
        key_id: str | None = None,
        team_id: str | None = None,
        *,
        topics: list[str] | None = None,
        strict_token_updates: bool = False,
        private_key_pem: str | None = None,
    ) -> tuple[str, str, str]:
        """An APNs auth key (.p8) registered with the simulator: ``(key_id, team_id, private_key_pem)``.

        A new P-256 key unless ``private_key_pem`` is given (to register one key with several
        simulators). ``topics`` limits the bundle ids it may push to; ``strict_token_updates``
        makes the simulator refuse a new JWT within 20 minutes of the previous one.
        """
        if private_key_pem is None:
            key = ec.generate_private_key(ec.SECP256R1())
            private_key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
        else:
            key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        key_id = key_id or uuid.uuid4().hex[:10].upper()
        team_id = team_id or uuid.uuid4().hex[:10].upper()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        body = {
            "key_id": key_id,
            "team_id": team_id,
            "public_key_pem": public_pem.decode(),
            "topics": topics,
            "strict_token_updates": strict_token_updates,
        }
        self.control("POST", "/_sim/apns/keys", body, expect=201)
        return key_id, team_id, private_key_pem

    # --- email (SMTP), SMS gateway and WNS -----------------------------------------------------

    def _listed(self, name: str) -> str:
        """The address the simulator printed for ``name`` (any scheme, ``smtp://`` included)."""
        for line in self.output:
            label, _, value = line.partition(" ")
            if label == name:
                return value
        raise SimulatorError(f"gatewaysim printed no {name} address: {self.output!r}")

    @property
    def smtp_url(self) -> str:
        """``smtp://127.0.0.1:<port>``: plain SMTP (STARTTLS offered, any AUTH login accepted)."""
        return self._listed("email")

    @property
    def smtp_host(self) -> str:
        return urllib.parse.urlsplit(self.smtp_url).hostname or ""

    @property
    def smtp_port(self) -> int:
        return urllib.parse.urlsplit(self.smtp_url).port or 0

    @property
    def sms_url(self) -> str:
        """``http://127.0.0.1:<port>``: the HTTP SMS gateway (any path, GET or POST)."""
        return self._listed("sms")

    def sms_gateway(self, program_name: str = "/sendsms", **overrides: Any) -> dict[str, Any]:
        """An ``sms_gateway`` app setting (MobileFirst smsConf shape) that targets the simulator."""
        url = urllib.parse.urlsplit(self.sms_url)
        return {
            "host": url.hostname,
            "port": url.port,
            "programName": program_name,
            "name": "gatewaysim",
            "parameters": [
                {"name": "apiKey", "value": "sim-key"},
                {"name": "to", "value": "{phoneNumber}"},
                {"name": "text", "value": "{message}"},
            ],
            **overrides,
        }

    @property
    def wns_url(self) -> str:
        """``https://127.0.0.1:<port>``: WNS channel URIs live under it (``/w/<id>``)."""
        return self._listed("wns")

    @property
    def wns_token_url(self) -> str:
        """The WNS OAuth endpoint (``HERALD_WNS_TOKEN_URL``)."""
        return self.wns_url + "/accesstoken.srf"

    def wns_channels(self, count: int = 1, *, expired: bool = False) -> list[str]:
        """New channel URIs, as a Windows device would get from WNS (``expired``: answered 410)."""
        body = {"count": count, "expired": expired}
        return self.control("POST", "/_sim/wns/channels", body, expect=201).body["channels"]

    def wns_channel(self) -> str:
        return self.wns_channels(1)[0]

    def expire_wns_channels(self, channels: list[str]) -> int:
        """Expire channels: later notifications to them get 410."""
        return self.control("POST", "/_sim/wns/channels/expire", {"channels": channels}, expect=200).body[
            "expired"
        ]

    def register_wns_app(self, package_sid: str, client_secret: str) -> None:
        """Make the WNS token endpoint check this Package SID's secret (others are accepted)."""
        body = {"package_sid": package_sid, "client_secret": client_secret}
        self.control("POST", "/_sim/wns/apps", body, expect=201)

    # --- Huawei Push Kit and ADM ---------------------------------------------------------------

    @property
    def hms_url(self) -> str:
        """``https://127.0.0.1:<port>``: Push Kit's base URL (``HERALD_HMS_BASE_URL``)."""
        return self._listed("hms")

    @property
    def hms_token_url(self) -> str:
        """The Huawei OAuth endpoint (``HERALD_HMS_TOKEN_URL``)."""
        return self.hms_url + "/oauth2/v3/token"

    def register_hms_app(self, app_id: str, app_secret: str) -> None:
        """Make the Huawei token endpoint check this App ID's secret (others are accepted)."""
        self.control("POST", "/_sim/hms/apps", {"app_id": app_id, "app_secret": app_secret}, expect=201)

    def invalidate_hms_tokens(self, *tokens: str) -> None:
        """Push tokens that Push Kit will call illegal from now on (80100000 / 80300007)."""
        self.control("POST", "/_sim/hms/tokens/invalidate", {"tokens": list(tokens)}, expect=200)

    @property
    def adm_url(self) -> str:
        """``https://127.0.0.1:<port>``: ADM's base URL (``HERALD_ADM_BASE_URL``)."""
        return self._listed("adm")

    @property
    def adm_token_url(self) -> str:
        """The Login with Amazon endpoint (``HERALD_ADM_TOKEN_URL``)."""
        return self.adm_url + "/auth/o2/token"

    def adm_registration_ids(self, count: int = 1, *, unregistered: bool = False) -> list[str]:
        """New ADM registration ids, as Fire devices get them (``unregistered``: answered 410)."""
        body = {"count": count, "unregistered": unregistered}
        return self.control("POST", "/_sim/adm/registrations", body, expect=201).body["registration_ids"]

    def unregister_adm(self, *registration_ids: str) -> None:
        """Later messages to these registration ids get 410 Unregistered."""
        body = {"registration_ids": list(registration_ids)}
        self.control("POST", "/_sim/adm/registrations/unregister", body, expect=200)

    def rotate_adm(self, *registration_ids: str) -> dict[str, str]:
        """Give these registration ids new canonical ones: sends to them are delivered and ADM
        answers the new id in ``registrationID``. Returns {old: new}."""
        body = {"registration_ids": list(registration_ids)}
        return self.control("POST", "/_sim/adm/registrations/rotate", body, expect=200).body["canonical"]

    def register_adm_client(self, client_id: str, client_secret: str) -> None:
        """Make the LWA token endpoint check this client id's secret (others are accepted)."""
        body = {"client_id": client_id, "client_secret": client_secret}
        self.control("POST", "/_sim/adm/clients", body, expect=201)

    def expire_access_tokens(self, platform: str) -> int:
        """Age every access token ``platform`` (``hms`` or ``adm``) issued: next sends get 'expired'."""
        return self.control("POST", f"/_sim/{platform}/oauth/expire", {}, expect=200).body["expired"]

    def access_tokens_issued(self, platform: str) -> int:
        """Access tokens ``platform`` (``hms`` or ``adm``) issued since the last reset."""
        return self.control("GET", f"/_sim/{platform}/oauth", expect=200).body["issued"]

    # --- Web Push ------------------------------------------------------------------------------

    @property
    def webpush_url(self) -> str:
        """``https://127.0.0.1:<port>``: the push service; endpoints live under it (``/push/<id>``)."""
        return self._listed("webpush")

    def webpush_subscriptions(
        self, count: int = 1, *, application_server_key: str | None = None
    ) -> list[dict[str, Any]]:
        """New subscriptions as ``PushManager.subscribe`` returns them: ``{"endpoint", "keys":
        {"p256dh", "auth"}}``; with ``application_server_key``, other VAPID keys get 403."""
        body: dict[str, Any] = {"count": count}
        if application_server_key is not None:
            body["application_server_key"] = application_server_key
        return self.control("POST", "/_sim/webpush/subscriptions", body, expect=201).body["subscriptions"]

    def webpush_subscription(self, *, application_server_key: str | None = None) -> dict[str, Any]:
        return self.webpush_subscriptions(1, application_server_key=application_server_key)[0]

    def expire_webpush(self, *endpoints: str) -> int:
        """Expire subscriptions: later pushes to them get 410 Gone."""
        body = {"endpoints": list(endpoints)}
        return self.control("POST", "/_sim/webpush/expire", body, expect=200).body["expired"]

    # --- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not exited in time; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def running_simulator(
    tmp_path: Path, *extra_args: str, ready_timeout: float = READY_TIMEOUT_SECONDS
) -> Iterator[Simulator]:
    """Start a simulator on free ports with its state in ``tmp_path/gatewaysim``; stop it on exit.

    ``extra_args`` go to the command line (for example ``"--record", "none"``).
    """
    state_dir = Path(tmp_path) / "gatewaysim"
    state_dir.mkdir(parents=True, exist_ok=True)
    sim = start_simulator(state_dir, *extra_args, ready_timeout=ready_timeout)
    try:
        yield sim
    finally:
        sim.stop()


def start_simulator(
    state_dir: Path, *extra_args: str, ready_timeout: float = READY_TIMEOUT_SECONDS
) -> Simulator:
    """Start a simulator and wait for its ready line; the caller must ``stop()`` it."""
    argv = [
        sys.executable,
        "-m",
        "gatewaysim",
        "--host",
        "127.0.0.1",
        "--control-port",
        "0",
        "--fcm-port",
        "0",
        *_free_gateway_ports(),
        "--state-dir",
        str(state_dir),
        "--exit-with-parent",
        *extra_args,
    ]
    log = (state_dir / "gatewaysim.log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(argv, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    log.close()
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process, lines), daemon=True).start()

    output: list[str] = []
    deadline = time.monotonic() + ready_timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = ""
        if line is None or line == "":
            _kill(process)
            reason = "exited" if line is None else f"was not ready after {ready_timeout:.0f}s"
            stderr = (state_dir / "gatewaysim.log").read_text()
            raise SimulatorError(f"gatewaysim {reason}; stdout: {output!r}; stderr:\n{stderr}")
        output.append(line)
        if line == READY_LINE:
            break

    addresses = {}
    ca_path = None
    for line in output:
        name, _, value = line.partition(" ")
        if name == "ca":
            ca_path = Path(value)
        elif value.startswith(("http://", "https://")):
            addresses[name] = value
    if ca_path is None or "fcm" not in addresses or "control" not in addresses:
        _kill(process)
        raise SimulatorError(f"unexpected gatewaysim output: {output!r}")
    return Simulator(process, addresses, ca_path, state_dir, output)


def _free_gateway_ports() -> list[str]:
    """``--<platform>-port 0`` for every other gateway, so simulators run side by side."""
    from gatewaysim.server import GATEWAYS

    return [arg for g in GATEWAYS if g.platform != "fcm" for arg in (f"--{g.platform}-port", "0")]


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    # Keep reading after the ready line, so the simulator never blocks on a full stdout pipe.
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
