"""The demo account that `make run` prints: idempotent, and usable after every run."""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from apps.credentials import read_sms_gateway
from apps.members import grant_dashboard_permissions
from apps.models import App, AppKey, Membership, Organization, UserKey
from apps.services import api_key_revoke, app_key_issue, organization_create, user_key_issue
from imfpush.demo import mfp_demo_bootstrap

DEMO_LABEL = "demo"


DEMO_FCM_PROJECT = "herald-demo"
DEMO_HUAWEI_APP_ID = "100000001"
DEMO_ADM_CLIENT_ID = "amzn1.application-oa2-client.00000000000000000000000000herald"


def simulators_configured() -> bool:
    """True when the FCM base URL points at a local simulator rather than Google."""
    return "googleapis.com" not in settings.HERALD_FCM_BASE_URL


def simulator_service_account() -> str:
    """A service account of our own whose token_uri is the FCM simulator's OAuth endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": DEMO_FCM_PROJECT,
            "private_key_id": secrets.token_hex(8),
            "private_key": pem,
            "client_email": f"herald@{DEMO_FCM_PROJECT}.iam.gserviceaccount.com",
            "token_uri": f"{settings.HERALD_FCM_BASE_URL}/token",
        }
    )


def wire_to_simulators(app: App) -> None:
    """Point every channel of the demo app at ``python -m gatewaysim`` (its default ports)."""
    if not app.fcm_service_account_json:
        app.fcm_service_account_json, app.fcm_project_id = simulator_service_account(), DEMO_FCM_PROJECT
    app.smtp_host, app.smtp_port = "127.0.0.1", settings.HERALD_DEMO_SMTP_PORT
    app.email_from_address, app.email_from_name = "demo@herald.invalid", "Herald demo"
    app.sms_gateway_json = read_sms_gateway(
        {
            "host": "127.0.0.1",
            "port": settings.HERALD_DEMO_SMS_PORT,
            "programName": "/send",
            "parameters": [{"name": "to", "value": "{phoneNumber}"}, {"name": "text", "value": "{message}"}],
        },
        public_host=False,  # the operator's own simulator; checked again, pinned, when sending
    )
    app.wns_package_sid = app.wns_package_sid or "ms-app://s-1-15-2-herald-demo"
    app.wns_client_secret = app.wns_client_secret or secrets.token_urlsafe(24)
    # The Huawei and ADM simulators accept any client they were not told about (HERALD_HMS_* and
    # HERALD_ADM_* point Herald at them), so made-up credentials of the right shape are enough.
    app.huawei_app_id = app.huawei_app_id or DEMO_HUAWEI_APP_ID
    app.huawei_app_secret = app.huawei_app_secret or secrets.token_hex(32)
    app.adm_client_id = app.adm_client_id or DEMO_ADM_CLIENT_ID
    app.adm_client_secret = app.adm_client_secret or secrets.token_hex(32)
    if not app.apns_p8 and settings.HERALD_GATEWAYSIM_CONTROL_URL:
        _register_apns_key(app)
    app.save()


def _register_apns_key(app: App) -> None:
    """APNs token auth needs a key the simulator knows: make one and register its public half."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_id, team_id = secrets.token_hex(5).upper(), "HERALDDEMO"
    body = json.dumps({"key_id": key_id, "team_id": team_id, "public_key_pem": public_pem}).encode()
    control = settings.HERALD_GATEWAYSIM_CONTROL_URL
    if not control.startswith(("http://", "https://")):
        return
    request = urllib.request.Request(  # noqa: S310 (scheme checked above; our own simulator)
        f"{control}/_sim/apns/keys",
        data=body,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (scheme checked above)
            pass
    except OSError:
        return  # simulator not running: leave APNs unconfigured rather than half-configured
    app.apns_p8, app.apns_key_id, app.apns_team_id = pem, key_id, team_id


@dataclass
class DemoCredentials:
    user_key: str
    app_id: str
    app_key: str
    admin_user: str
    admin_password: str
    client_id: str | None = None
    client_secret: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _rotate_demo_key(model, plaintext_issuer, **owner) -> str:
    """Keys are stored hashed, so a repeated run cannot print the old one: replace it."""
    for key in model.objects.active().filter(label=DEMO_LABEL, **owner):
        api_key_revoke(key=key)
    _key, plaintext = plaintext_issuer(label=DEMO_LABEL, **owner)
    return plaintext


@transaction.atomic
def bootstrap_demo(*, org_name: str = "demo") -> DemoCredentials:
    organization = Organization.objects.filter(name=org_name).first() or organization_create(name=org_name)
    username = "admin" if org_name == "demo" else f"{org_name}-admin"
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    user.is_staff = True
    user.set_password(password)
    user.save()
    grant_dashboard_permissions(user)
    Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": Membership.Role.OWNER}
    )
    app = App.objects.filter(organization=organization, name=f"{org_name} app").first()
    if app is None:
        app = App.objects.create(
            organization=organization,
            name=f"{org_name} app",
            apns_env=App.ApnsEnv.SANDBOX,
            apns_bundle_id="com.example.herald.demo",
        )
    if simulators_configured():
        wire_to_simulators(app)
    user_key = _rotate_demo_key(UserKey, lambda **kw: user_key_issue(**kw), organization=organization)
    app_key = _rotate_demo_key(AppKey, lambda **kw: app_key_issue(**kw), app=app)
    client_id, client_secret = mfp_demo_bootstrap(app=app, org_name=org_name)  # /imfpush/v1
    return DemoCredentials(
        user_key=user_key,
        app_id=str(app.id),
        app_key=app_key,
        admin_user=username,
        admin_password=password,
        client_id=client_id,
        client_secret=client_secret,
    )
