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
from cryptography.hazmat.primitives.asymmetric import rsa

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
