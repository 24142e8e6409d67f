"""The platforms ``--mix`` can name, and seeding their players with COPY.

Every identifier is one the matching simulator accepts: FCM takes any token, APNs hex device
tokens, the SMS gateway E.164 numbers and SMTP any address; Web Push endpoints (with their real
``p256dh`` and ``auth`` keys) and WNS channel URIs are issued by the simulator itself, which keeps
each subscription's private key so that it can decrypt what Herald sends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

SUBSCRIPTIONS_PER_CALL = 10_000


@dataclass(frozen=True)
class Platform:
    name: str  # as --mix spells it
    device_type: int
    channel: str  # the notification channel that targets it: push, email or sms
    simulator: str  # its key in the simulator's /_sim/stats
    http2: bool  # sent one HTTP/2 request per device (compared with the raw HTTP/2 baseline)


PLATFORMS = {
    p.name: p
    for p in (
        Platform("android", 1, "push", "fcm", True),
        Platform("ios", 0, "push", "apns", True),
        Platform("web", 5, "push", "webpush", True),  # Chrome
        Platform("wns", 6, "push", "wns", True),
        Platform("email", 11, "email", "email", False),
        Platform("sms", 14, "sms", "sms", False),
    )
}
BY_DEVICE_TYPE = {p.device_type: p for p in PLATFORMS.values()}


def parse_mix(text: str) -> list[Platform]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PLATFORMS]
    if unknown or not names:
        raise ValueError(f"--mix: a comma list of {', '.join(PLATFORMS)}; unknown: {', '.join(unknown)}")
    if len(set(names)) != len(names):
        raise ValueError("--mix: each platform once")
    return [PLATFORMS[name] for name in names]


def split_evenly(count: int, platforms: list[Platform]) -> dict[str, int]:
    """Player i goes to platform i mod k: the counts differ by at most one."""
    k = len(platforms)
    return {p.name: count // k + (1 if i < count % k else 0) for i, p in enumerate(platforms)}


@dataclass
class Identity:
    identifier: str
    web_p256: str | None = None
    web_auth: str | None = None


def identities(platform: Platform, count: int, sim, vapid_public_key: str | None) -> list[Identity]:
    """``count`` identifiers for ``platform``, asking the simulator where it issues them."""
    if platform.name == "android":
        return [Identity(f"bench-fcm-{i:09d}") for i in range(count)]
    if platform.name == "ios":
        return [Identity(f"{i:064x}") for i in range(count)]
    if platform.name == "email":
        return [Identity(f"bench-{i:09d}@example.com") for i in range(count)]
    if platform.name == "sms":
        return [Identity(f"+1{2_000_000_000 + i}") for i in range(count)]
    found: list[Identity] = []
    while len(found) < count:
        batch = min(SUBSCRIPTIONS_PER_CALL, count - len(found))
        if platform.name == "web":
            body = {"count": batch, "application_server_key": vapid_public_key}
            for s in sim.control("/_sim/webpush/subscriptions", body)["subscriptions"]:
                found.append(Identity(s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"]))
        elif platform.name == "wns":
            found += [
                Identity(uri) for uri in sim.control("/_sim/wns/channels", {"count": batch})["channels"]
            ]
        else:
            raise ValueError(platform.name)
    return found


def seed_players(app_id: uuid.UUID, mix: list[Platform], per_platform: dict[str, list[Identity]]) -> None:
    """COPY, not the ORM: a million rows in seconds. Platforms are interleaved, player i on
    platform i mod k, as a real audience would be."""
    from django.db import connection

    now = datetime.now(UTC).isoformat()
    columns = (
        "id, app_id, device_type, identifier, web_p256, web_auth, language, tags, session_count, playtime, "
        "amount_spent, badge_count, notification_types, invalid_identifier, location_meta, created_at, "
        "last_active"
    )
    total = sum(len(ids) for ids in per_platform.values())
    cursors = dict.fromkeys(per_platform, 0)
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY players_player ({columns}) FROM STDIN") as copy,
    ):
        for i in range(total):
            platform = mix[i % len(mix)]
            identity = per_platform[platform.name][cursors[platform.name]]
            cursors[platform.name] += 1
            copy.write_row(
                (
                    uuid.uuid4(),
                    app_id,
                    platform.device_type,
                    identity.identifier,
                    identity.web_p256,
                    identity.web_auth,
                    "en",
                    f'{{"level": "{i % 50}"}}',
                    1,
                    0,
                    0,
                    0,
                    1,
                    False,
                    "{}",
                    now,
                    now,
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE players_player")
