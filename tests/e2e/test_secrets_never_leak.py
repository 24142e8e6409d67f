"""No secret ever appears in an API response or a log line.

An app gets every kind of credential through ``PUT /apps/{id}`` (APNs .p8, APNs and Safari .p12
with their passwords, the FCM service account, the legacy GCM/Chrome keys, the SMTP password, the
SMS gateway's API key, the WNS client secret, a VAPID private key, the Huawei and ADM client
secrets); a second app is created with them through ``POST /apps``; bad uploads are refused.
Then every read of the API and the dashboard is made, and a notification goes through the real
worker to every channel but Huawei's and Amazon's (APNs with the .p8, then with the .p12), each
accepted by a simulator that checks the credential it was signed or authenticated with, so the
secrets were really in use.

Everything said meanwhile is searched for every secret, in every form it could take (as given,
base64 and base64url at any alignment, hex, and each line of a private key's PEM body):

- every response body, and the dashboard's App pages;
- this process's log records at DEBUG (the live server runs here), with ``DEBUG = True`` so
  Django logs every SQL statement with its parameters; and its stdout and stderr (``print``, C
  libraries);
- everything the worker printed, at ``--loglevel DEBUG``.

The search is checked, so that it can fail: it finds secrets in samples of careless log lines
(an SMTP ``AUTH PLAIN``, a service-account dump, a gateway URL, a converted key), and the captured
logs hold the lines that would carry a leak (the UPDATE that stored the secrets, the worker's DEBUG
lines for each notification).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from django.contrib.auth import get_user_model
from django.test import Client

from apps.vapid import read_vapid_private_key
from tests.e2e.support import (
    HeraldApi,
    call,
    every_channel_credentials,
    every_gateway_env,
    settle,
    use_every_gateway,
)
from tests.gatewaysim.simulator import Simulator
from tests.notifications.test_apns_provider import p12_for

pytestmark = pytest.mark.e2e

IOS, ANDROID, CHROME, WNS, EMAIL, SMS = 0, 1, 5, 6, 11, 14
BUNDLE = "com.example.secrets"
MIN_FORM_LENGTH = 16  # shorter strings could turn up by chance in random text (ciphertexts, ids)
PEM_LINE = re.compile(r"^[A-Za-z0-9+/=]{16,}$")


# --- what a secret looks like -------------------------------------------------------------------


def base64_forms(data: bytes) -> set[str]:
    """What ``data`` looks like inside any base64 or base64url text: at each of the three byte
    alignments, the characters that depend on ``data`` alone (so ``AUTH PLAIN``'s
    ``base64("\\0user\\0password")`` shows the password's form too)."""
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = 4 if offset else 0
        end = len(encoded) - (4 if (offset + len(data)) % 3 else 0)
        core = encoded[start:end]
        forms |= {core, core.translate(str.maketrans("+/", "-_"))}
    return forms


def pem_body_lines(pem: str) -> set[str]:
    return {line for line in pem.splitlines() if PEM_LINE.match(line)}


@dataclass
class Secret:
    name: str
    forms: set[str] = field(default_factory=set)

    @classmethod
    def text(cls, name: str, value: str) -> Secret:
        return cls(name, {value, value.encode().hex(), *base64_forms(value.encode())})

    @classmethod
    def key(cls, name: str, pem: str) -> Secret:
        """A private key: its PEM as given and the lines of its body, its DER in any encoding."""
        der = serialization.load_pem_private_key(pem.encode(), password=None).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(name, {pem, *pem_body_lines(pem), der.hex(), *base64_forms(der)})

    def add_key(self, key) -> Secret:
        """Also every PEM encoding of ``key`` (PKCS#8, the traditional one), as a library may
        convert it (libcurl gets the .p12's key as PKCS#8 PEM)."""
        for private_format in (
            serialization.PrivateFormat.PKCS8,
            serialization.PrivateFormat.TraditionalOpenSSL,
        ):
            pem = key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption())
            self.forms |= pem_body_lines(pem.decode())
            der = key.private_bytes(serialization.Encoding.DER, private_format, serialization.NoEncryption())
            self.forms |= {der.hex(), *base64_forms(der)}
        return self

    def __post_init__(self) -> None:
        self.forms = {form for form in self.forms if len(form) >= MIN_FORM_LENGTH}


def leaks(text: str, all_secrets: list[Secret]) -> list[str]:
    """``secret name: ...context...`` for every form of a secret found in ``text``."""
    found = []
    for secret in all_secrets:
        for form in secret.forms:
            at = text.find(form)
            if at >= 0:
                context = text[max(0, at - 60) : at].replace("\n", " ")
                found.append(f"{secret.name} ({len(form)} chars) after: {context!r}")
                break
    return found


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker_extra_env(sim, live_server) -> dict[str, str]:
    """Overrides conftest's: every channel to the simulator, Django's root logger at DEBUG."""
    return {**every_gateway_env(sim, public_url=live_server.url), "HERALD_LOG_LEVEL": "DEBUG"}


@pytest.fixture(scope="module")
def worker_loglevel() -> str:
    """Overrides conftest's: the worker logs everything it does."""
    return "DEBUG"


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset(keep_tokens=True)
    use_every_gateway(settings, sim)
    yield
    settle()


@dataclass
class Credentials:
    fields: dict  # the PUT /apps body
    secrets: list[Secret]
    sms_api_key: str
    vapid_public_key: str


def every_credential(sim: Simulator, api: HeraldApi) -> Credentials:
    """Every kind of credential an app takes, each one the simulator can check, and its forms."""
    token = secrets.token_urlsafe  # 32 random bytes: long, and each one unique
    smtp_password, sms_api_key, wns_secret = token(32), token(32), token(32)
    fields = every_channel_credentials(
        sim,
        apns_key=sim.apns_key(topics=[BUNDLE]),
        bundle_id=BUNDLE,
        smtp_password=smtp_password,
        sms_api_key=sms_api_key,
        wns_client_secret=wns_secret,
    )
    p12_password, safari_password = token(32), token(32)
    fields["apns_p12"] = p12_for(sim, BUNDLE, p12_password)
    fields["apns_p12_password"] = p12_password
    fields["safari_apns_p12"] = p12_for(sim, f"web.{BUNDLE}", safari_password)
    fields["safari_apns_p12_password"] = safari_password
    fields["gcm_key"], fields["chrome_key"] = f"AAAA{token(40)}", f"AIza{token(30)}"
    # Huawei Push Kit and ADM: uploaded and read back here, not sent to.
    fields["huawei_app_id"], fields["huawei_app_secret"] = str(secrets.randbelow(10**9)), token(32)
    fields["adm_client_id"] = f"amzn1.application-oa2-client.{secrets.token_hex(16)}"
    fields["adm_client_secret"] = token(32)
    vapid = ec.generate_private_key(ec.SECP256R1())
    fields["vapid_private_key"] = vapid.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw_vapid, vapid_public_key = read_vapid_private_key(fields["vapid_private_key"])
    raw = base64.urlsafe_b64decode(raw_vapid + "=")  # the 32-byte scalar

    account = fields["fcm_v1_service_account_json"]
    found = [
        Secret.key("apns_p8", fields["apns_p8"]),
        Secret.key("fcm private_key", account["private_key"]),
        Secret.text("fcm private_key_id", account["private_key_id"]),
        Secret.text("smtp_password", smtp_password),
        Secret.text("sms_gateway apiKey", sms_api_key),
        Secret.text("wns_client_secret", wns_secret),
        Secret.text("gcm_key", fields["gcm_key"]),
        Secret.text("chrome_key", fields["chrome_key"]),
        Secret.text("huawei_app_secret", fields["huawei_app_secret"]),
        Secret.text("adm_client_secret", fields["adm_client_secret"]),
        Secret.key("vapid_private_key", fields["vapid_private_key"]),
        Secret("vapid_private_key (stored form)", {raw_vapid, raw.hex(), *base64_forms(raw)}),
        Secret.text("the App key", api.app_key),
        Secret.text("the User key", api.user_key),
    ]
    for name, password in (("apns", p12_password), ("safari_apns", safari_password)):
        p12 = fields[f"{name}_p12"]
        key, _cert, _extra = pkcs12.load_key_and_certificates(base64.b64decode(p12), password.encode())
        found.append(Secret.text(f"{name}_p12_password", password))
        found.append(Secret(f"{name}_p12", {p12, *(p12[i : i + 64] for i in range(0, len(p12) - 64, 64))}))
        found.append(Secret(f"{name}_p12's private key").add_key(key))
    return Credentials(fields, found, sms_api_key, vapid_public_key)


# --- the test -------------------------------------------------------------------------------------


def test_no_secret_appears_in_any_response_or_log_line(
    live_server, tenant, sim, worker, settings, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    settings.DEBUG = True  # Django logs every SQL statement, parameters included
    api = HeraldApi(f"{live_server.url}/api/v1", str(tenant.app.pk), tenant.app_key, tenant.user_key)
    credentials = every_credential(sim, api)
    responses: dict[str, str] = {}

    def keep(name: str, answer, status: int = 200) -> dict:
        assert answer.status == status, (name, answer.body)
        responses[name] = answer.text
        return answer.body

    # --- uploads, good and bad
    keep("PUT /apps/{id}", api.configure(credentials.fields))
    created = keep(
        "POST /apps",
        call("POST", f"{api.root}/apps", {"name": "Copy", **credentials.fields}, key=api.user_key),
    )
    assert created["basic_auth_key"]  # the new app's own key, shown once
    wrong_password = secrets.token_urlsafe(32)
    keep(
        "PUT with a .p12 and the wrong password",
        api.configure({"apns_p12": credentials.fields["apns_p12"], "apns_p12_password": wrong_password}),
        400,
    )
    account = credentials.fields["fcm_v1_service_account_json"]
    keep(
        "PUT with a service account missing project_id",
        api.configure({"fcm_v1_service_account_json": {**account, "project_id": None}}),
        400,
    )
    credentials.secrets.append(Secret.text("a refused .p12 password", wrong_password))

    # --- reads
    keep("GET /apps", call("GET", f"{api.root}/apps", key=api.user_key))
    app = keep("GET /apps/{id}", call("GET", f"{api.root}/apps/{api.app_id}", key=api.user_key))
    public = keep(
        "GET web_push_public_key", api.call("GET", f"/apps/{api.app_id}/web_push_public_key", keyed=False)
    )
    # The uploads took effect: the public key is the uploaded private key's, the .p12 is summarised.
    assert app["vapid_public_key"] == public["vapid_public_key"] == credentials.vapid_public_key
    assert BUNDLE in app["apns_certificates"]

    # --- a notification to every channel, each accepted only with the right credential
    ios = api.register(IOS, secrets.token_hex(32))
    api.register(ANDROID, f"fcm-{secrets.token_urlsafe(24)}")
    api.subscribe_web(sim, CHROME)
    api.register(WNS, sim.wns_channel())
    api.register(EMAIL, "ada@example.com")
    api.register(SMS, "+15551230001")
    sent = {
        "push": api.send(
            included_segments=["Subscribed Users"], contents={"en": "Hi"}, headings={"en": "Yo"}
        ),
        "email": api.send(
            included_segments=["Subscribed Users"],
            email_subject="Hi",
            email_body='<p>Hi</p><a href="[unsubscribe_url]">Unsubscribe</a>',
        ),
        "sms": api.send(
            included_segments=["Subscribed Users"], contents={"en": "Hi"}, sms_from="+15550009999"
        ),
    }
    for nid in sent.values():
        assert api.wait_completed(nid, worker)["errored"] == 0
    # Without the .p8, APNs is reached with the .p12's client certificate.
    keep("PUT /apps/{id} clearing apns_p8", api.configure({"apns_p8": ""}))
    sent["apns with the .p12"] = api.send(include_player_ids=[ios], contents={"en": "Hi again"})
    api.wait_completed(sent["apns with the .p12"], worker)
    for name, nid in sent.items():
        notification = keep(
            f"GET /notifications/{{id}} ({name})",
            api.call("GET", f"/notifications/{nid}?app_id={api.app_id}"),
        )
        assert (notification["failed"], notification["errored"]) == (0, 0), notification
    keep("GET /notifications", api.call("GET", f"/notifications?app_id={api.app_id}"))
    keep("GET /players", api.call("GET", f"/players?app_id={api.app_id}"))

    # Each gateway accepted what the worker sent with the secrets: they were in use.
    stats = sim.stats()
    assert {p: stats[p]["accepted"] for p in ("apns", "fcm", "webpush", "wns", "email", "sms")} == {
        "apns": 2,
        "fcm": 1,
        "webpush": 1,
        "wns": 1,
        "email": 1,
        "sms": 1,
    }
    assert [d["headers"]["x-sim-auth"] for d in sim.deliveries(platform="apns")] == ["token", "certificate"]
    [sms] = sim.deliveries(platform="sms")
    assert sms["payload"]["params"]["apiKey"] == credentials.sms_api_key  # it went through the worker

    # --- the dashboard's App pages
    admin = get_user_model().objects.create_superuser("root", "root@example.com", secrets.token_urlsafe(16))
    dashboard = Client()
    dashboard.force_login(admin)
    for path in ("/admin/apps/app/", f"/admin/apps/app/{api.app_id}/change/"):
        page = dashboard.get(path)
        assert page.status_code == 200, path
        responses[f"dashboard {path}"] = page.content.decode()
    assert "smtp_password" in responses[f"dashboard /admin/apps/app/{api.app_id}/change/"]  # named, not shown

    # --- the logs
    web_log = caplog.text
    printed = capfd.readouterr()
    worker_log = worker_log_with(worker, sent.values())
    # The statements that wrote the secrets were logged (with ciphertexts where the secrets went).
    stored = [line for line in web_log.splitlines() if 'UPDATE "apps_app"' in line and api.app_id in line]
    assert any('"smtp_password"' in line and '"apns_p12_password"' in line for line in stored), stored
    logs = {
        "web log records": web_log,
        "web stdout": printed.out,
        "web stderr": printed.err,
        "worker log": worker_log,
    }

    # The search finds secrets as a careless log line would show them.
    assert all(secret.forms for secret in credentials.secrets)
    for sample, name in leak_samples(credentials):
        assert any(leak.startswith(f"{name} (") for leak in leaks(sample, credentials.secrets)), name

    found = {
        f"{source}: {leak}"
        for source, text in {**responses, **logs}.items()
        for leak in leaks(text, credentials.secrets)
    }
    assert not found, "secrets leaked:\n" + "\n".join(sorted(found))


def leak_samples(credentials: Credentials) -> list[tuple[str, str]]:
    """(a log line that leaks a secret, the secret's name): each in a form other than as given."""
    fields = credentials.fields
    auth_plain = base64.b64encode(f"\0herald\0{fields['smtp_password']}".encode()).decode()
    p12_key, _cert, _extra = pkcs12.load_key_and_certificates(
        base64.b64decode(fields["apns_p12"]), fields["apns_p12_password"].encode()
    )
    libcurl_key = p12_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    vapid = serialization.load_pem_private_key(fields["vapid_private_key"].encode(), password=None)
    scalar = vapid.private_numbers().private_value.to_bytes(32, "big")
    return [
        (f"send: 'AUTH PLAIN {auth_plain}\\r\\n'", "smtp_password"),
        (f"token request {json.dumps(fields['fcm_v1_service_account_json'])}", "fcm private_key"),
        (f"GET /cgi-bin/sendsms?apiKey={credentials.sms_api_key}&to=%2B1555", "sms_gateway apiKey"),
        (f"client key {libcurl_key!r}", "apns_p12's private key"),
        (f"signing with {scalar.hex()}", "vapid_private_key (stored form)"),
    ]


def worker_log_with(worker, notification_ids, timeout: float = 10.0) -> str:
    """The worker's whole log once it shows each notification's tasks; checks it logged at DEBUG."""
    deadline = time.monotonic() + timeout
    while True:
        text = worker.log_path.read_text(errors="replace")
        if all(nid in text for nid in notification_ids) and "succeeded" in text:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the worker's log does not show every notification:\n{text[-5000:]}")
        time.sleep(0.2)
    assert "DEBUG" in text, text[-2000:]
    return text
