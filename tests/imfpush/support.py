"""Shared helpers for /imfpush/v1 tests: an MFP application per tenant, device registration, and
the checks every endpoint must pass (401, 403, 404 for an outsider, 405, 406, translated errors).

Use ``check_common_failures`` from a parametrized test, one ``Endpoint`` per operation::

    ENDPOINTS = [Endpoint("GET", "apps/{app}/devices", "devices.read"), ...]

    @pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
    def test_common_failures(endpoint, own, outsider, mfp, token_for):
        check_common_failures(endpoint, own=own, outsider=outsider, mfp=mfp, token_for=token_for)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from imfpush.models import MfpApplication
from imfpush.services import mfp_application_create
from tests.conftest import Tenant

APP_ID = "myapp"
ENGLISH_UNAUTHORIZED = (
    "Unauthorized - The caller is either not authenticated or not authorized to make this request."
)
APP_NOT_FOUND = "The application does not exist."


def mfp_app(tenant: Tenant, application_id: str = APP_ID) -> MfpApplication:
    """A MobileFirst application (a new App with ``Push.all``) in the tenant's organization."""
    return mfp_application_create(organization=tenant.organization, body={"applicationId": application_id})


def device_body(device_id: str, token: str, platform: str = "A", **extra: Any) -> dict:
    return {"deviceId": device_id, "token": token, "platform": platform, **extra}


def register(mfp, token: str, device_id: str, device_token: str | None = None, platform: str = "A", **extra):
    """POST a device and assert it was created (201)."""
    response = mfp.post(
        f"apps/{extra.pop('app', APP_ID)}/devices",
        device_body(device_id, device_token or f"token-{device_id}", platform, **extra),
        token=token,
    )
    assert response.status_code == 201, response.content
    return response.json()


def expire_latest_token() -> None:
    """Expire the access token issued last (``token_for`` issues a new one on every call)."""
    model = get_access_token_model()
    latest = model.objects.order_by("-id").first()
    model.objects.filter(pk=latest.pk).update(expires=timezone.now() - timedelta(seconds=1))


@dataclass
class Endpoint:
    """One operation: method, path (``{app}`` is the applicationId) and canonical scope."""

    method: str
    path: str
    scope: str
    body: Any = None
    # A method the path does not allow, for the 405 check, and the Allow header expected then.
    wrong_method: str = "PATCH"
    allow: str | None = None
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, app: str = APP_ID) -> str:
        return self.path.format(app=app)


def call(mfp, endpoint: Endpoint, *, token: str | None = None, headers: dict | None = None, app=APP_ID):
    body = endpoint.body if endpoint.method in ("POST", "PUT") else None
    if endpoint.method in ("POST", "PUT") and body is None:
        body = {}
    return mfp.request(endpoint.method, endpoint.url(app), body, token=token or "", headers=headers)


def check_common_failures(
    endpoint: Endpoint,
    *,
    own: Tenant,
    outsider: Tenant,
    mfp,
    token_for: Callable[..., str],
    setup: Callable[[], Any] | None = None,
) -> None:
    """401 (none, bad, expired), 403 (operation scope, app scope, another app's token), 404 for
    an outsider, 405 (method; Content-Type on bodies), 406, and a German/Spanish message."""
    mfp_app(own)
    mfp_app(own, "otherapp")
    mfp_app(outsider, "outsiderapp")
    if setup is not None:
        setup()
    app_scope = f"push.application.{APP_ID}"
    needed = f'Bearer error="insufficient_scope", scope="{endpoint.scope} {app_scope}"'

    # 401: no token, a bad token, an expired token.
    response = call(mfp, endpoint)
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"code": "FPWSE9001E", "message": ENGLISH_UNAUTHORIZED}
    response = call(mfp, endpoint, token="not-a-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    token = token_for(own, f"{endpoint.scope} {app_scope}")
    expire_latest_token()
    response = call(mfp, endpoint, token=token)
    assert response.status_code == 401 and response.json()["code"] == "FPWSE9001E"
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    # 403: the operation scope is missing; the application scope is missing; another app's token.
    other_app = f"{endpoint.scope} push.application.otherapp"
    wrong_operation = "tags.read" if endpoint.scope == "messages.write" else "messages.write"
    for scope in (f"{wrong_operation} {app_scope}", endpoint.scope, other_app):
        response = call(mfp, endpoint, token=token_for(own, scope))
        assert response.status_code == 403, (scope, response.content)
        assert response["WWW-Authenticate"] == needed
        assert response.json()["code"] == "FPWSE9002E"

    # 404: an applicationId of another tenant is unknown here, whatever the token's scopes.
    outsider_token = token_for(outsider, f"{endpoint.scope} push.application.*")
    response = call(mfp, endpoint, token=outsider_token)
    assert response.status_code == 404
    assert response.json() == {"code": "FPWSE0001E", "message": APP_NOT_FOUND}
    response = call(mfp, endpoint, token=outsider_token, app="outsiderapp")
    assert response.status_code != 404 or response.json()["message"] != APP_NOT_FOUND

    good = token_for(own, f"{endpoint.scope} {app_scope}")
    # 406: Accept without application/json.
    response = call(mfp, endpoint, token=good, headers={"Accept": "application/xml"})
    assert response.status_code == 406 and response.json()["code"] == "FPWSE9004E"
    # 405: a method the path does not have (with Allow), and a body that is not JSON.
    response = mfp.request(endpoint.wrong_method, endpoint.url(), token=good)
    assert response.status_code == 405 and response.json()["code"] == "FPWSE9005E"
    if endpoint.allow is not None:
        assert response["Allow"] == endpoint.allow
    if endpoint.method in ("POST", "PUT"):
        response = mfp.request(
            endpoint.method, endpoint.url(), token=good, data=b"deviceId=x", content_type="text/plain"
        )
        assert response.status_code == 405 and response.json()["code"] == "FPWSE9003E"

    # Translated messages: German for the 401, Spanish for the unknown application.
    response = call(mfp, endpoint, headers={"Accept-Language": "de"})
    assert response.status_code == 401 and response["Content-Language"] == "de"
    assert response.json()["code"] == "FPWSE9001E"
    assert response.json()["message"] != ENGLISH_UNAUTHORIZED
    response = call(mfp, endpoint, token=outsider_token, headers={"Accept-Language": "es"})
    assert response.status_code == 404 and response["Content-Language"] == "es"
    assert response.json()["message"] not in ("", APP_NOT_FOUND)
