"""FCM HTTP v1: OAuth2 tokens from the app's service account (google-auth), messages sent
over the shared multiplexed HTTP/2 client. pyfcm is not used for sending: its fan-out opens a
connection per message and drops status codes (DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import orjson
import requests
from django.conf import settings
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

from apps.credentials import fcm_token_uri_allowed
from notifications.providers.base import (
    Outcome,
    Provider,
    ProviderNotConfigured,
    Recipient,
    RenderedMessage,
    SendResult,
)
from notifications.providers.http2 import Http2Client, HttpRequest, HttpResponse, shared_client
from notifications.providers.platform_fields import capped_ttl, platform_body

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM refuses a message whose data and notification payload exceeds 4096 bytes ("Message is too
# big"); the gateway simulator counts it as payload_size below does.
MAX_PAYLOAD = 4096
# FCM error codes (google.firebase.fcm.v1.FcmError / google.rpc status) -> outcome.
ERROR_OUTCOMES = {
    "UNREGISTERED": Outcome.INVALID_RECIPIENT,
    "SENDER_ID_MISMATCH": Outcome.INVALID_RECIPIENT,
    "NOT_FOUND": Outcome.INVALID_RECIPIENT,
    "QUOTA_EXCEEDED": Outcome.TRANSIENT,
    "RESOURCE_EXHAUSTED": Outcome.TRANSIENT,
    "UNAVAILABLE": Outcome.TRANSIENT,
    "INTERNAL": Outcome.TRANSIENT,
    "UNKNOWN": Outcome.TRANSIENT,
    "DEADLINE_EXCEEDED": Outcome.TRANSIENT,
    "UNAUTHENTICATED": Outcome.TRANSIENT,  # our access token expired: refreshed before the retry
    "THIRD_PARTY_AUTH_ERROR": Outcome.ERROR,
    "PERMISSION_DENIED": Outcome.ERROR,
    "INVALID_ARGUMENT": Outcome.ERROR,
}

_lock = threading.Lock()
_credentials: dict[str, service_account.Credentials] = {}


def _http_session() -> requests.Session:
    session = requests.Session()
    if settings.HERALD_GATEWAY_CA_FILE:
        # requests lets REQUESTS_CA_BUNDLE in the environment override session.verify.
        session.trust_env = False
        session.verify = settings.HERALD_GATEWAY_CA_FILE
    return session


def _access_token(service_account_json: str, *, force_refresh: bool = False) -> str:
    """A cached OAuth2 token for the service account, refreshed only when it nears expiry."""
    cache_key = hashlib.sha256(service_account_json.encode()).hexdigest()
    with _lock:
        credentials = _credentials.get(cache_key)
        if credentials is None:
            info = json.loads(service_account_json)
            credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
            _credentials[cache_key] = credentials
        if force_refresh or not credentials.valid:
            credentials.refresh(GoogleAuthRequest(session=_http_session()))
        return credentials.token


def _client() -> Http2Client:
    return shared_client("fcm")


def build_message(recipient: Recipient, message: RenderedMessage) -> dict[str, Any]:
    """An FCM v1 ``Message`` in OneSignal's Android payload convention (``data.custom.i``), plus
    the internal ``fcm_data_extra`` and ``fcm_android_notification`` fields (platform_fields)."""
    body = platform_body(message.body, "fcm")
    custom: dict[str, Any] = {"i": message.notification_id}
    if body.get("url") or body.get("app_url"):
        custom["u"] = body.get("app_url") or body.get("url")
    if body.get("data"):
        custom["a"] = body["data"]
    data = {"custom": orjson.dumps(custom).decode()}
    if message.heading:
        data["title"] = message.heading
    if message.content:
        data["alert"] = message.content
    if body.get("buttons"):
        data["actionButtons"] = orjson.dumps(body["buttons"]).decode()
    extra = body.get("fcm_data_extra")
    if isinstance(extra, dict):
        data.update({key: value for key, value in extra.items() if isinstance(value, str)})
    priority = body.get("priority")
    android: dict[str, Any] = {
        "priority": "NORMAL" if priority is not None and int(priority) < 10 else "HIGH",
        "ttl": f"{capped_ttl(body, message.ttl_seconds)}s",
    }
    if body.get("collapse_id"):
        android["collapse_key"] = body["collapse_id"]
    fcm_message: dict[str, Any] = {"token": recipient.identifier, "data": data, "android": android}
    if message.content and not body.get("content_available"):
        notification = {"title": message.heading, "body": message.content, "image": body.get("big_picture")}
        fcm_message["notification"] = {k: v for k, v in notification.items() if v}
        android_notification = {
            "channel_id": body.get("android_channel_id") or body.get("existing_android_channel_id"),
            "sound": body.get("android_sound"),
            "icon": body.get("small_icon"),
            "color": body.get("android_accent_color") and f"#{body['android_accent_color'][-6:]}",
            "tag": body.get("collapse_id"),
        }
        android_notification = {k: v for k, v in android_notification.items() if v}
        if isinstance(body.get("fcm_android_notification"), dict):
            android_notification.update(body["fcm_android_notification"])
        if android_notification:
            android["notification"] = android_notification
    return fcm_message


def payload_size(fcm_message: dict[str, Any]) -> int:
    """Bytes FCM counts against MAX_PAYLOAD: the compact JSON of each data and notification
    object of the message (the text is in both ``data`` and ``notification``)."""
    android = fcm_message.get("android") or {}
    parts = (
        fcm_message.get("data"),
        fcm_message.get("notification"),
        android.get("data"),
        android.get("notification"),
    )
    return sum(len(orjson.dumps(part)) for part in parts if part)


def classify(response: HttpResponse) -> tuple[Outcome, str, float | None]:
    if response.status == 200:
        return Outcome.SENT, "", None
    if response.status == 0:
        return Outcome.TRANSIENT, f"transport: {response.error}"[:64], None
    retry_after = _retry_after(response.headers.get("retry-after"))
    code = ""
    try:
        error = orjson.loads(response.body).get("error", {})
        code = next((d.get("errorCode") for d in error.get("details", []) if d.get("errorCode")), None)
        code = code or error.get("status", "")
    except (orjson.JSONDecodeError, AttributeError):
        pass
    if not code:
        outcome = Outcome.TRANSIENT if response.status >= 500 or response.status == 429 else Outcome.ERROR
        return outcome, f"http {response.status}", retry_after
    return ERROR_OUTCOMES.get(code, Outcome.ERROR), code, retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class FcmProvider(Provider):
    platform = "fcm"

    def __init__(self, app):
        super().__init__(app)
        if not app.fcm_service_account_json or not app.fcm_project_id:
            raise ProviderNotConfigured("FCM: the app has no service account")
        self.url = f"{settings.HERALD_FCM_BASE_URL}/v1/projects/{app.fcm_project_id}/messages:send"

    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        # The service account's token_uri is the tenant's: Herald POSTs only to Google or to the
        # operator's FCM endpoint (checked when uploaded, and here again for older uploads).
        token_uri = json.loads(self.app.fcm_service_account_json).get("token_uri")
        if not fcm_token_uri_allowed(token_uri):
            return [SendResult(r.player_id, Outcome.ERROR, "UnsafeTokenUri") for r, _ in items]
        token = _access_token(self.app.fcm_service_account_json)
        requests_ = [
            HttpRequest(
                url=self.url,
                body=orjson.dumps({"message": build_message(recipient, message)}),
                headers=[f"authorization: Bearer {token}", "content-type: application/json"],
                tag=recipient.player_id,
            )
            for recipient, message in items
        ]
        results = []
        unauthenticated = False
        for response in _client().send_all(requests_):
            outcome, reason, retry_after = classify(response)
            unauthenticated |= reason == "UNAUTHENTICATED"
            results.append(SendResult(response.request.tag, outcome, reason, retry_after))
        if unauthenticated:
            _access_token(self.app.fcm_service_account_json, force_refresh=True)
        return results
