"""Property: a notification that passes validation builds payloads within every platform's limit.

notifications/validation.py accepts a body only when "the largest per-language rendering fits the
providers' 4 KB" (the 3,500-byte content rule), the APNs payload it builds fits 4,096 bytes
(5,120 for VoIP) and the Web Push plaintext fits 3,993 bytes. Hypothesis writes random bodies
(long, multi-byte and XML-escapable texts in several languages, data, buttons, URLs), keeps the
ones ``validate_notification`` accepts, renders them as the pipeline does for a recipient of
each language (no tag substitution, which validation does not count), builds each provider's
payload with the provider's own builder, and measures it against the gateway's limit:

| platform | limit | measured as |
| --- | --- | --- |
| APNs | 4,096 bytes (5,120 VoIP) | the JSON body |
| FCM | 4,096 bytes | data + notification (+ android.data/notification), compact JSON |
| Web Push | 3,993 bytes | the plaintext before aes128gcm (one 4,096-byte record) |
| WNS | 5,000 bytes | each request body |
| Huawei Push Kit | 4,096 bytes | the message without its tokens |
| Amazon ADM | 6,144 bytes | the data object |
| SMS | 3,500 bytes | the text, which the gateway request carries unchanged |
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.api.errors import ApiError
from notifications.providers import adm, apns, fcm, hms, webpush, wns
from notifications.providers.base import Recipient, RenderedMessage
from notifications.providers.sms import build_query
from notifications.rendering import pick_language
from notifications.validation import LANGUAGE_MAPS, validate_notification
from tests.factories import AppFactory

FCM_LIMIT = 4096
WEB_PUSH_LIMIT = webpush.MAX_PLAINTEXT_BYTES
WNS_LIMIT = 5000
HMS_LIMIT = 4096
ADM_LIMIT = 6144
SMS_LIMIT = 3500
NOW = datetime(2026, 6, 1, tzinfo=UTC)

SHORT = settings(
    max_examples=80, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
LONG = settings(max_examples=3000, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# Characters that cost more than they look: multi-byte UTF-8, XML and JSON escapes.
CHARS = st.one_of(
    st.sampled_from(["a", " ", "&", "<", '"', "\\", "é", "€", "😀", "\n"]), st.characters(codec="utf-8")
)
LANGUAGES = st.sampled_from(["en", "fr", "de", "zh-Hans"])


@st.composite
def texts(draw, max_size: int) -> dict:
    """A language map: sometimes one huge text, sometimes several medium ones."""
    size = draw(st.sampled_from([max_size, max_size // 2, max_size // 4, 40]))
    text = st.builds(
        lambda chunk, n: (chunk * n)[:size], st.text(CHARS, min_size=1, max_size=8), st.integers(1, size)
    )
    return draw(st.dictionaries(LANGUAGES, text, min_size=1, max_size=3))


@st.composite
def bodies(draw) -> dict:
    body: dict = {"included_segments": ["Subscribed Users"], "contents": draw(texts(3500))}
    body["contents"].setdefault("en", draw(st.text(CHARS, min_size=1, max_size=20)))
    if draw(st.booleans()):
        body["headings"] = draw(texts(3500))
    if draw(st.booleans()):
        body["subtitle"] = draw(texts(500))
    if draw(st.booleans()):
        body["data"] = draw(
            st.dictionaries(st.text(CHARS, max_size=10), st.text(CHARS, max_size=400), max_size=5)
        )
    if draw(st.booleans()):
        body["url"] = "https://example.com/" + draw(st.text(st.sampled_from("abc&%/"), max_size=300))
    if draw(st.booleans()):
        body["buttons"] = [
            {"id": f"b{i}", "text": draw(st.text(CHARS, max_size=60))} for i in range(draw(st.integers(1, 3)))
        ]
    if draw(st.booleans()):
        body["web_buttons"] = [
            {
                "id": f"w{i}",
                "text": draw(st.text(CHARS, max_size=60)),
                "url": "https://93.184.216.34/" + "x" * draw(st.integers(0, 200)),
            }
            for i in range(draw(st.integers(1, 2)))
        ]
    if draw(st.booleans()):
        body["chrome_web_icon"] = "https://93.184.216.34/" + "i" * draw(st.integers(0, 500))
    if draw(st.booleans()):
        body["collapse_id"] = draw(st.text(st.sampled_from("abc"), min_size=1, max_size=64))
    if draw(st.booleans()):
        body["big_picture"] = "https://93.184.216.34/" + "p" * draw(st.integers(0, 300))
    if draw(st.booleans()):
        body["apns_push_type_override"] = "voip"
    # One platform alone, sometimes: a limit can be looser than another platform's (every push
    # platform is targeted by default).
    flag = draw(st.sampled_from([None, "isIos", "isAndroid", "isHuawei", "isAdm", "isWP_WNS", "isAnyWeb"]))
    if flag:
        body[flag] = True
    return body


def recipient(device_type: int, language: str | None) -> Recipient:
    return Recipient(
        player_id=uuid.uuid4(), device_type=device_type, identifier="x" * 64, language=language, tags={}
    )


def rendered(body: dict, language: str | None) -> RenderedMessage:
    maps = {key: body.get(key) if isinstance(body.get(key), dict) else None for key in LANGUAGE_MAPS}
    return RenderedMessage(
        notification_id=str(uuid.uuid4()),
        heading=pick_language(maps["headings"], language),
        content=pick_language(maps["contents"], language),
        subtitle=pick_language(maps["subtitle"], language),
        body=body,
    )


def fcm_size(message: dict) -> int:
    android = message.get("android") or {}
    parts = (
        message.get("data"),
        message.get("notification"),
        android.get("data"),
        android.get("notification"),
    )
    return sum(len(orjson.dumps(part)) for part in parts if part)


def check_payloads(app, body: dict) -> None:
    try:
        request = validate_notification(app=app, body=body, now=NOW)
    except ApiError:
        assume(False)
        return
    body = request.body
    languages = {
        None,
        "xx",
        *(set().union(*(body[k] for k in LANGUAGE_MAPS if isinstance(body.get(k), dict)))),
    }
    for language in languages:
        message = rendered(body, language)
        if 0 in request.device_types:
            payload = apns.build_payload(recipient(0, language), message)
            limit = apns.payload_limit(apns.push_type_of(message))
            assert len(orjson.dumps(payload)) <= limit, ("apns", language)
        if 1 in request.device_types:
            assert fcm_size(fcm.build_message(recipient(1, language), message)) <= FCM_LIMIT, (
                "fcm",
                language,
            )
        for device_type in request.device_types & {5, 8}:
            plaintext = webpush.build_payload(
                notification_id=message.notification_id,
                heading=message.heading,
                content=message.content,
                body=body,
                device_type=device_type,
                site_name=app.site_name,
                default_icon=app.chrome_web_default_notification_icon,
            )
            assert len(orjson.dumps(plaintext)) <= WEB_PUSH_LIMIT, ("webpush", language)
        if 6 in request.device_types:
            for http_request in wns.build_requests(recipient(6, language), message, token="t"):
                assert len(http_request.body) <= WNS_LIMIT, ("wns", language)
        if 13 in request.device_types:
            built = hms.build_message(message, default_title=app.name)
            assert len(orjson.dumps(built)) <= HMS_LIMIT, ("hms", language)
        if 2 in request.device_types:
            assert len(orjson.dumps(adm.build_body(message)["data"])) <= ADM_LIMIT, ("adm", language)


@pytest.fixture
def app(db):
    return AppFactory(
        site_name="Herald fuzz site", chrome_web_default_notification_icon="https://93.184.216.34/i.png"
    )


@SHORT
@given(body=bodies())
def test_validated_push_notifications_fit_every_platform(app, body):
    check_payloads(app, body)


@pytest.mark.slow
@LONG
@given(body=bodies())
def test_validated_push_notifications_fit_every_platform_long(app, body):
    check_payloads(app, body)


@SHORT
@given(contents=texts(3500))
def test_validated_sms_text_reaches_the_gateway_whole(app, contents):
    body = {"include_phone_numbers": ["+15555550100"], "contents": {"en": "x", **contents}}
    try:
        request = validate_notification(app=app, body=body, now=NOW)
    except ApiError:
        assume(False)
        return
    config = {"host": "sms.example.com", "port": 443, "programName": "/send", "parameters": []}
    for language in {None, *contents}:
        text = rendered(request.body, language).content
        assert len(text.encode()) <= SMS_LIMIT
        query = parse_qs(build_query(config, {"phoneNumber": "+15555550100", "message": text, "from": ""}))
        assert query["text"] == [text]


# --- what the property found (regressions) --------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "contents", "platform"),
    [
        # JSON escapes control characters as \u0007 (6 bytes), and FCM carries the text twice.
        ({"isAndroid": True}, {"en": "\x07" * 1000}, "Android (FCM) payload must not exceed 4096 bytes"),
        ({"isAndroid": True}, {"en": "a" * 2100}, "Android (FCM) payload must not exceed 4096 bytes"),
        # The toast escapes & as &amp;: 1,100 bytes of text become 5,500.
        ({"isWP_WNS": True}, {"en": "&" * 1100}, "Windows (WNS) payload must not exceed 5000 bytes"),
        # Push Kit's data is JSON inside JSON: a quote costs 4 bytes there, and 2 in the notification.
        ({"isHuawei": True}, {"en": '"' * 1100}, "Huawei (Push Kit) payload must not exceed 4096 bytes"),
        ({"isAdm": True}, {"en": "\x07" * 1100}, "Amazon (ADM) payload must not exceed 6144 bytes"),
    ],
)
def test_payloads_the_gateway_would_refuse_are_a_400(api_root, own, flags, contents, platform):
    body = {"app_id": str(own.app.id), "included_segments": ["All"], "contents": contents, **flags}
    response = api_root.post("/notifications", body, key=own.app_key)
    assert response.status_code == 400
    assert platform in response.json()["errors"][0] and "language en" in response.json()["errors"][0]


def test_the_same_texts_fit_where_the_gateway_allows_them(api_root, own):
    body = {"app_id": str(own.app.id), "included_segments": ["All"], "contents": {"en": "a" * 2000}}
    response = api_root.post("/notifications", {**body, "isAndroid": True}, key=own.app_key)
    assert response.status_code == 200, response.content
    body["contents"] = {"en": "&" * 900}
    assert api_root.post("/notifications", {**body, "isWP_WNS": True}, key=own.app_key).status_code == 200


def test_web_push_measures_the_text_that_is_longest_as_json(api_root, own):
    """Found by the long property run: the estimate took the longest text in bytes (fr), while
    the escaped en text is the longer plaintext (a 3,994-byte payload passed)."""
    body = {
        "app_id": str(own.app.id),
        "included_segments": ["All"],
        "isAnyWeb": True,
        "contents": {"en": "\x07" * 660, "fr": "a" * 700},
    }
    response = api_root.post("/notifications", body, key=own.app_key)
    assert response.status_code == 400
    assert f"Web push payload must not exceed {WEB_PUSH_LIMIT} bytes" in response.json()["errors"][0]
