"""Every platform at once: one segment holding iOS, Android, Chrome, Firefox, WNS, email and SMS
players, a real ``celery worker``, and one simulator process speaking every gateway's protocol.

OneSignal sends one channel per notification (push, email or SMS; a request mixing them is a 400,
onesignal-api.md §4.1), so the segment gets the three notifications that reach all of it: one
push notification (APNs, FCM, Web Push and WNS in one fan-out) and one each for email and SMS.
Each player must get exactly one message, from the notification of its channel, at the right
gateway, in that gateway's format; players outside the segment get nothing; and the counters
Herald reports (``GET /notifications/{id}``) must match what the simulator recorded.

The app is wired to the simulator through ``PUT /apps/{id}`` and its players register through
``POST /players``, as an operator and the SDKs would.
"""

from __future__ import annotations

import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from players.models import Player
from tests.e2e.support import (
    HeraldApi,
    call,
    every_channel_credentials,
    every_gateway_env,
    settle,
    use_every_gateway,
)
from tests.gatewaysim.simulator import Simulator

pytestmark = pytest.mark.e2e

IOS, ANDROID, CHROME, WNS, FIREFOX, EMAIL, SMS = 0, 1, 5, 6, 8, 11, 14
GATEWAY = {IOS: "apns", ANDROID: "fcm", CHROME: "webpush", FIREFOX: "webpush", WNS: "wns"}
GATEWAY |= {EMAIL: "email", SMS: "sms"}
STATS_KEY = {IOS: "ios", ANDROID: "android", CHROME: "chrome_web_push", FIREFOX: "firefox_web_push"}
STATS_KEY |= {WNS: "windows", EMAIL: "email", SMS: "sms"}
NAMES = {IOS: "Ada", ANDROID: "Bo", CHROME: "Cy", FIREFOX: "Di", WNS: "Ed", EMAIL: "Flo", SMS: "Gus"}
BUNDLE = "com.example.herald"
SEGMENT = "Mixed cohort"
TTL = 3600
MIXED_CHANNELS = (
    "Platforms You may only send to one delivery channel at a time. Make sure you are only including one of "
    "push platforms, Email, or SMS."
)
EMAIL_BODY = (
    '<html><body><h1>Hi {{ first_name | default: "there" }}</h1><p>Half price today.</p>'
    '<p><a href="[unsubscribe_url]">Unsubscribe</a></p></body></html>'
)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apns_key(sim) -> tuple[str, str, str]:
    """A .p8 the simulator knows, with strict token updates: a JWT renewed within 20 minutes of
    the previous one would be refused, so every send below proves the worker reuses its JWT."""
    return sim.apns_key(topics=[BUNDLE], strict_token_updates=True)


@pytest.fixture(scope="module")
def worker_extra_env(sim, live_server) -> dict[str, str]:
    """Overrides conftest's: the worker sends every channel to the simulator."""
    return every_gateway_env(sim, public_url=live_server.url)


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db) -> Iterator[None]:
    sim.reset(keep_tokens=True)  # the worker's cached FCM and WNS tokens stay valid across tests
    use_every_gateway(settings, sim)
    yield
    settle()


@pytest.fixture
def herald(live_server, tenant, sim, apns_key) -> HeraldApi:
    api = HeraldApi(f"{live_server.url}/api/v1", str(tenant.app.pk), tenant.app_key, tenant.user_key)
    answer = api.configure(every_channel_credentials(sim, apns_key=apns_key, bundle_id=BUNDLE))
    assert answer.status == 200, answer.body
    return api


# --- the audience -----------------------------------------------------------------------------


@dataclass
class Member:
    player_id: str
    device_type: int
    identifier: str
    first_name: str | None
    language: str = "en"
    badge_count: int = 0

    @property
    def gateway(self) -> str:
        return GATEWAY[self.device_type]


@dataclass
class Audience:
    members: list[Member] = field(default_factory=list)  # in the segment
    outsiders: list[Member] = field(default_factory=list)

    def of(self, *device_types: int) -> list[Member]:
        return [m for m in self.members if m.device_type in device_types]

    def by_identifier(self) -> dict[str, Member]:
        return {m.identifier: m for m in self.members}


def register_audience(herald: HeraldApi, sim: Simulator) -> Audience:
    """Two players of each of the seven platforms in the segment (tag ``cohort=mixed``), one of
    each outside it (``cohort=other``), all through POST /players."""
    audience = Audience()
    for cohort, into in (("mixed", audience.members), ("other", audience.outsiders)):
        count = 2 if cohort == "mixed" else 1
        for device_type in (IOS, ANDROID, CHROME, FIREFOX, WNS, EMAIL, SMS):
            for n in range(count):
                # The first of each platform has a first_name tag; the second gets the default text.
                first_name = NAMES[device_type] if n == 0 else None
                tags = {"cohort": cohort, **({"first_name": first_name} if first_name else {})}
                # The second iOS player reads Spanish and has no badge yet; the first shows 3.
                language = "es" if device_type == IOS and n == 1 else "en"
                badge_count = 3 if device_type == IOS and n == 0 else 0
                fields = {"tags": tags, "language": language, "badge_count": badge_count}
                if device_type in (CHROME, FIREFOX):
                    player_id, subscription = herald.subscribe_web(sim, device_type, **fields)
                    identifier = subscription["endpoint"]
                else:
                    identifier = new_identifier(sim, device_type, n, cohort)
                    player_id = herald.register(device_type, identifier, **fields)
                into.append(Member(player_id, device_type, identifier, first_name, language, badge_count))
    return audience


def new_identifier(sim: Simulator, device_type: int, n: int, cohort: str) -> str:
    if device_type == IOS:
        return secrets.token_hex(32)
    if device_type == ANDROID:
        return f"fcm-{secrets.token_urlsafe(24)}"
    if device_type == WNS:
        return sim.wns_channel()
    if device_type == EMAIL:
        return f"{cohort}{n}@example.com"
    return f"+1555{'1' if cohort == 'mixed' else '2'}00000{n}"


def create_segment(herald: HeraldApi) -> None:
    filters = [{"field": "tag", "key": "cohort", "relation": "=", "value": "mixed"}]
    answer = herald.call("POST", f"/apps/{herald.app_id}/segments", {"name": SEGMENT, "filters": filters})
    assert answer.status == 201 and answer.body["success"] is True, answer.body


def counters(notification: dict) -> tuple[int, int, int, int]:
    return (
        notification["successful"],
        notification["failed"],
        notification["errored"],
        notification["remaining"],
    )


def stats_entry(successful: int) -> dict[str, int]:
    return {"successful": successful, "failed": 0, "errored": 0, "converted": 0, "received": 0}


def ttl_left(value: str, sent_at: float) -> int:
    """A TTL header or FCM ``"<n>s"``: what was left of the notification's ``ttl`` when sent."""
    seconds = int(value.removesuffix("s"))
    assert TTL - (time.time() - sent_at) - 2 <= seconds <= TTL, value
    return seconds


# --- the test -------------------------------------------------------------------------------------


def test_one_segment_of_every_platform_gets_each_message_once_in_its_gateways_format(
    herald, sim, worker, live_server
):
    audience = register_audience(herald, sim)
    create_segment(herald)

    # One request for every channel (push platforms, email and SMS fields) is refused, as OneSignal
    # refuses it.
    mixed = herald.post_notification(
        included_segments=[SEGMENT],
        contents={"en": "Hi"},
        isIos=True,
        isAndroid=True,
        email_subject="Hi",
        email_body=EMAIL_BODY,
        sms_from="+15550009999",
    )
    assert (mixed.status, mixed.body) == (400, {"errors": [MIXED_CHANNELS]})

    sent_at = time.time()
    push = herald.post_notification(
        included_segments=[SEGMENT],
        headings={"en": "Flash sale", "es": "Oferta"},
        contents={"en": 'Hi {{ first_name | default: "there" }}, 50% off', "es": "Hola, 50% menos"},
        url="https://shop.example/sale",
        data={"sku": "A-1"},
        ios_badgeType="Increase",
        ios_badgeCount=1,
        ios_sound="chime.caf",
        thread_id="sales",
        chrome_web_icon="https://cdn.example/chrome.png",
        firefox_icon="https://cdn.example/firefox.png",
        priority=10,
        ttl=TTL,
    )
    email = herald.post_notification(
        included_segments=[SEGMENT],
        email_subject='Sale for {{ first_name | default: "you" }}',
        email_body=EMAIL_BODY,
    )
    sms = herald.post_notification(
        included_segments=[SEGMENT],
        contents={"en": 'Hi {{ first_name | default: "you" }}: 50% off today'},
        sms_from="+15550009999",
    )
    # recipients is the audience counted at POST time: only the notification's own channel.
    assert (push.status, push.body["recipients"]) == (200, 10), push.body
    assert (email.status, email.body["recipients"]) == (200, 2), email.body
    assert (sms.status, sms.body["recipients"]) == (200, 2), sms.body
    push_id, email_id, sms_id = push.body["id"], email.body["id"], sms.body["id"]
    notifications = {nid: herald.wait_completed(nid, worker) for nid in (push_id, email_id, sms_id)}

    # --- exactly once per player, at the right gateway; nothing for anyone outside the segment
    records = sim.deliveries()
    assert {r["status"] for r in records} <= {200, 201, 250}, records
    received = Counter((r["platform"], r["token"]) for r in records)
    assert received == Counter({(m.gateway, m.identifier): 1 for m in audience.members})
    assert not {m.identifier for m in audience.outsiders} & {r["token"] for r in records}
    stats = sim.stats()
    for gateway, expected in Counter(m.gateway for m in audience.members).items():
        assert stats[gateway] == {"received": expected, "accepted": expected, "rejected": 0, "duplicates": 0}
    by_identifier = audience.by_identifier()
    by_gateway = {gateway: {r["token"]: r for r in records if r["platform"] == gateway} for gateway in stats}

    # --- the counters Herald reports match the simulator's records, platform by platform
    channels = {push_id: (IOS, ANDROID, CHROME, FIREFOX, WNS), email_id: (EMAIL,), sms_id: (SMS,)}
    for nid, device_types in channels.items():
        notification = notifications[nid]
        gateways = {GATEWAY[device_type] for device_type in device_types}
        recorded = Counter(
            STATS_KEY[by_identifier[r["token"]].device_type]
            for r in records
            if r["platform"] in gateways and carries(r, nid)
        )
        assert sum(recorded.values()) == len(audience.of(*device_types))
        assert counters(notification) == (sum(recorded.values()), 0, 0, 0)
        assert notification["platform_delivery_stats"] == {key: stats_entry(n) for key, n in recorded.items()}
    assert set(notifications[push_id]["platform_delivery_stats"]) == {
        "ios",
        "android",
        "chrome_web_push",
        "firefox_web_push",
        "windows",
    }

    # --- APNs: the aps dictionary, OneSignal's custom keys, the headers, one JWT for every request
    custom = {"i": push_id, "u": "https://shop.example/sale", "a": {"sku": "A-1"}}
    jwts = set()
    for member in audience.of(IOS):
        record = by_gateway["apns"][member.identifier]
        spanish = member.language == "es"
        assert record["payload"] == {
            "aps": {
                "alert": {
                    "title": "Oferta" if spanish else "Flash sale",
                    "body": "Hola, 50% menos" if spanish else f"Hi {member.first_name or 'there'}, 50% off",
                },
                "sound": "chime.caf",
                "badge": member.badge_count + 1,
                "thread-id": "sales",
            },
            "custom": custom,
        }
        headers = record["headers"]
        assert headers["apns-topic"] == BUNDLE
        assert headers["apns-push-type"] == "alert"
        assert headers["apns-priority"] == "10"
        assert sent_at + TTL - 5 <= int(headers["apns-expiration"]) <= time.time() + TTL
        assert (headers["authorization"], headers["x-sim-auth"]) == ("bearer [redacted]", "token")
        jwts.add(headers["x-sim-jwt"])
    assert len(jwts) == 1  # one provider token for the batch
    # Delivered with a badge: the count is written back for the next Increase.
    for member in audience.of(IOS):
        assert Player.objects.get(pk=member.player_id).badge_count == member.badge_count + 1

    # --- FCM HTTP v1: the whole message, OneSignal's Android data keys included
    for member in audience.of(ANDROID):
        message = by_gateway["fcm"][member.identifier]["payload"]
        text = f"Hi {member.first_name or 'there'}, 50% off"
        ttl_left(message["android"]["ttl"], sent_at)
        assert json.loads(message["data"].pop("custom")) == custom
        assert message == {
            "token": member.identifier,
            "data": {"title": "Flash sale", "alert": text},
            "android": {"priority": "HIGH", "ttl": message["android"]["ttl"]},
            "notification": {"title": "Flash sale", "body": text},
        }

    # --- Web Push: the plaintext the simulator decrypted, per browser
    for member in audience.of(CHROME, FIREFOX):
        record = by_gateway["webpush"][member.identifier]
        browser = "firefox" if member.device_type == FIREFOX else "chrome"
        assert record["payload"] == {
            "title": "Flash sale",
            "alert": f"Hi {member.first_name or 'there'}, 50% off",
            "icon": f"https://cdn.example/{browser}.png",
            "custom": custom,
        }
        headers = record["headers"]
        ttl_left(headers["ttl"], sent_at)
        assert (headers["urgency"], headers["content-encoding"]) == ("high", "aes128gcm")
        assert headers["authorization"] == "vapid [redacted]"

    # --- WNS: a ToastGeneric toast whose launch argument carries OneSignal's custom keys
    for member in audience.of(WNS):
        record = by_gateway["wns"][member.identifier]
        headers = record["headers"]
        assert (headers["x-wns-type"], headers["content-type"]) == ("wns/toast", "text/xml")
        assert headers["x-wns-cache-policy"] == "cache"
        ttl_left(headers["x-wns-ttl"], sent_at)
        toast = ET.fromstring(record["payload"]["xml"])  # noqa: S314 - our own simulator's record
        assert toast.tag == "toast"
        assert toast.find("visual/binding").get("template") == "ToastGeneric"
        texts = [t.text for t in toast.iter("text")]
        assert texts == ["Flash sale", f"Hi {member.first_name or 'there'}, 50% off"]
        assert json.loads(toast.get("launch")) == custom

    # --- SMS: the rendered text, through the gateway's configured parameters
    for member in audience.of(SMS):
        payload = by_gateway["sms"][member.identifier]["payload"]
        assert payload["message"] == f"Hi {member.first_name or 'you'}: 50% off today"
        assert payload["params"]["to"] == member.identifier
        assert payload["params"]["from"] == "+15550009999"
        assert (payload["path"], payload["method"]) == ("/cgi-bin/sendsms", "GET")

    # --- Email: subject and HTML per person, and a working unsubscribe link in the mail itself
    first, second = audience.of(EMAIL)
    for member in (first, second):
        mail = by_gateway["email"][member.identifier]["payload"]
        assert mail["subject"] == f"Sale for {member.first_name or 'you'}"
        assert mail["from"] == "Herald News <news@herald.test>"
        assert f"<h1>Hi {member.first_name or 'there'}</h1>" in mail["html"]
        assert mail["headers"]["x-herald-notification-id"] == email_id
        assert "[unsubscribe_url]" not in mail["html"]
    mail = by_gateway["email"][first.identifier]["payload"]
    link = mail["headers"]["list-unsubscribe"].strip("<>")
    assert link.startswith(f"{live_server.url}/email/unsubscribe/") and f'href="{link}"' in mail["html"]
    page = call("GET", link)
    assert page.status == 200 and "unsubscribed" in page.text
    shown = herald.call("GET", f"/players/{first.player_id}?app_id={herald.app_id}").body
    assert shown["notification_types"] == -2
    assert Player.objects.get(pk=second.player_id).notification_types == 1  # only the one who clicked

    # The next email to the segment skips the player who unsubscribed.
    sim.reset(keep_tokens=True)
    again = herald.send(included_segments=[SEGMENT], email_subject="Again", email_body=EMAIL_BODY)
    assert counters(herald.wait_completed(again, worker)) == (1, 0, 0, 0)
    assert [r["token"] for r in sim.deliveries()] == [second.identifier]


def carries(record: dict, notification_id: str) -> bool:
    """Whether a simulator record carries this notification's id (SMS texts carry none: there is
    only one SMS notification)."""
    payload, platform = record["payload"], record["platform"]
    if platform == "apns":
        return payload["custom"]["i"] == notification_id
    if platform == "fcm":
        return json.loads(payload["data"]["custom"])["i"] == notification_id
    if platform == "webpush":
        return payload["custom"]["i"] == notification_id
    if platform == "wns":
        return json.loads(payload["launch"])["i"] == notification_id
    if platform == "email":
        return payload["headers"]["x-herald-notification-id"] == notification_id
    return platform == "sms"


# --- iOS badges -----------------------------------------------------------------------------------


def test_a_delivered_badge_is_written_back_so_the_next_increase_builds_on_it(herald, sim, worker):
    shown = herald.register(IOS, secrets.token_hex(32), badge_count=2)
    fresh = herald.register(IOS, secrets.token_hex(32))
    gone_token = secrets.token_hex(32)
    gone = herald.register(IOS, gone_token, badge_count=5)
    android = herald.register(ANDROID, f"fcm-{secrets.token_urlsafe(24)}", badge_count=4)
    sim.faults("apns", token_errors={gone_token: "Unregistered"})
    steps = [  # (badge fields, the badge each iOS player is sent; None: no badge in the payload)
        ({"ios_badgeType": "Increase", "ios_badgeCount": 1}, {shown: 3, fresh: 1}),
        ({"ios_badgeType": "SetTo", "ios_badgeCount": 7}, {shown: 7, fresh: 7}),
        ({}, {shown: None, fresh: None}),
        ({"ios_badgeType": "Increase", "ios_badgeCount": 2}, {shown: 9, fresh: 9}),
    ]
    tokens = {str(p.pk): p.identifier for p in Player.objects.filter(app_id=herald.app_id)}
    stored = {shown: 2, fresh: 0}
    jwts = set()
    for fields, badges in steps:
        notification_id = herald.send(included_segments=["Subscribed Users"], contents={"en": "Hi"}, **fields)
        notification = herald.wait_completed(notification_id, worker)
        assert notification["platform_delivery_stats"]["ios"]["successful"] == 2
        records = {
            r["token"]: r
            for r in sim.deliveries(platform="apns")
            if r["status"] == 200 and r["payload"]["custom"]["i"] == notification_id
        }
        assert set(records) == {tokens[shown], tokens[fresh]}
        for player_id, badge in badges.items():
            record = records[tokens[player_id]]
            assert record["payload"]["aps"].get("badge") == badge, fields
            jwts.add(record["headers"]["x-sim-jwt"])
            stored[player_id] = stored[player_id] if badge is None else badge
            player = herald.call("GET", f"/players/{player_id}?app_id={herald.app_id}").body
            assert player["badge_count"] == stored[player_id], fields
    # A failed delivery sets no badge; other platforms' counts are not APNs'.
    assert Player.objects.get(pk=gone).badge_count == 5
    assert Player.objects.get(pk=gone).unsubscribed_reason == "Unregistered"
    assert Player.objects.get(pk=android).badge_count == 4
    assert len(jwts) == 1  # one provider token across the four notifications
