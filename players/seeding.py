"""Seeding demo and test players fast: the platforms ``--mix`` can name, identifiers their gateway
simulators accept, and the rows written with COPY (``manage.py seed_players`` and the benchmarks
both use this module; it was bench/platforms.py).

Every identifier is one the matching simulator accepts: FCM takes any token, APNs hex device
tokens, the SMS gateway E.164 numbers and SMTP any address; Web Push endpoints (with their real
``p256dh`` and ``auth`` keys) and WNS channel URIs are issued by the simulator itself, which keeps
each subscription's private key so that it can decrypt what Herald sends.

No Django model is imported at module level: the benchmarks import this before ``django.setup()``.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

SUBSCRIPTIONS_PER_CALL = 10_000
# How often (in rows) the seeding reports progress: often enough for a bar, rare enough to cost nothing.
PROGRESS_ROWS = 5_000
# Rows per INSERT where COPY is not available (SQLite, the embedded default of `make run`).
INSERT_BATCH = 500


@dataclass(frozen=True)
class Platform:
    name: str  # as --mix spells it
    device_type: int
    channel: str  # the notification channel that targets it: push, email or sms
    simulator: str  # its key in the simulator's /_sim/stats
    http2: bool  # sent one HTTP/2 request per device (compared with the raw HTTP/2 baseline)
    issued_by_simulator: bool = False  # its identifiers come from the simulator (needs it running)


PLATFORMS = {
    p.name: p
    for p in (
        Platform("android", 1, "push", "fcm", True),
        Platform("ios", 0, "push", "apns", True),
        Platform("web", 5, "push", "webpush", True, issued_by_simulator=True),  # Chrome
        Platform("wns", 6, "push", "wns", True, issued_by_simulator=True),
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


class SimulatorControl(Protocol):
    def control(self, path: str, body: dict | None = None) -> dict: ...


class ControlUrl:
    """The gateway simulator's control API at a URL (``HERALD_GATEWAYSIM_CONTROL_URL``, which
    ``make run`` sets); the benchmarks pass their own simulator object instead."""

    def __init__(self, url: str):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")

    def control(self, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - scheme checked
            return json.loads(response.read() or b"{}")


def identities(
    platform: Platform,
    count: int,
    sim: SimulatorControl | None,
    vapid_public_key: str | None,
    *,
    start: int = 0,
    prefix: str = "bench",
) -> list[Identity]:
    """``count`` identifiers for ``platform``, numbered from ``start``; web and WNS ones are
    asked of the simulator (``sim``), which issues them."""
    numbers = range(start, start + count)
    if platform.name == "android":
        return [Identity(f"{prefix}-fcm-{i:09d}") for i in numbers]
    if platform.name == "ios":
        return [Identity(f"{i:064x}") for i in numbers]
    if platform.name == "email":
        return [Identity(f"{prefix}-{i:09d}@example.com") for i in numbers]
    if platform.name == "sms":
        return [Identity(f"+1{2_000_000_000 + i}") for i in numbers]
    if sim is None:
        raise ValueError(f"{platform.name} identifiers are issued by the gateway simulator: none given")
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


COLUMNS = (
    "id",
    "app_id",
    "device_type",
    "identifier",
    "web_p256",
    "web_auth",
    "language",
    "tags",
    "session_count",
    "playtime",
    "amount_spent",
    "badge_count",
    "notification_types",
    "invalid_identifier",
    "location_meta",
    "created_at",
    "last_active",
)


def seed_players(
    app_id: uuid.UUID,
    mix: list[Platform],
    per_platform: dict[str, list[Identity]],
    *,
    tags: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the players: on PostgreSQL with COPY, not the ORM (a million rows in seconds);
    elsewhere (SQLite) with batched INSERTs. Platforms are interleaved, player i on platform
    i mod k, as a real audience would be. Every player gets the tag ``level`` "0".."49" and
    ``tags`` (which win over ``level``). ``progress(rows)`` is told of rows written as they go.
    Returns the number of players written.

    All or nothing: if a row fails (an identifier already in the app), nothing is written and
    Django's IntegrityError is raised.
    """
    import psycopg
    from django.db import IntegrityError, connection, transaction

    now = datetime.now(UTC)
    total = sum(len(ids) for ids in per_platform.values())
    cursors = dict.fromkeys(per_platform, 0)
    extra = json.dumps(tags)[1:-1] if tags else ""

    def rows():
        for i in range(total):
            platform = mix[i % len(mix)]
            identity = per_platform[platform.name][cursors[platform.name]]
            cursors[platform.name] += 1
            yield (
                uuid.uuid4(),
                app_id,
                platform.device_type,
                identity.identifier,
                identity.web_p256,
                identity.web_auth,
                "en",
                # JSON by hand: a million json.dumps calls would slow the benchmarks' seeding. The
                # extra tags come after "level", and in a JSON object the last of a key wins.
                f'{{"level": "{i % 50}"{", " + extra if extra else ""}}}',
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

    with transaction.atomic():
        if connection.vendor == "postgresql":
            try:
                written = _copy(connection, rows(), progress)
            except psycopg.IntegrityError as exc:  # the raw COPY cursor is not Django's wrapper
                raise IntegrityError(str(exc)) from exc
        else:
            written = _insert(rows(), progress)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE players_player")
    return written


def _copy(connection, rows, progress: Callable[[int], None] | None) -> int:
    written = 0
    with (
        connection.cursor() as cursor,
        cursor.connection.cursor().copy(f"COPY players_player ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            written += 1
            if progress is not None and written % PROGRESS_ROWS == 0:
                progress(PROGRESS_ROWS)
    if progress is not None and written % PROGRESS_ROWS:
        progress(written % PROGRESS_ROWS)
    return written


def _insert(rows, progress: Callable[[int], None] | None) -> int:
    from players.models import Player

    written = 0
    batch: list[Player] = []
    for row in rows:
        values = dict(zip(COLUMNS, row, strict=True))
        values["tags"] = json.loads(values["tags"])
        values["location_meta"] = {}
        batch.append(Player(**values))
        if len(batch) == INSERT_BATCH:
            Player.objects.bulk_create(batch)
            written += len(batch)
            if progress is not None:
                progress(len(batch))
            batch = []
    if batch:
        Player.objects.bulk_create(batch)
        written += len(batch)
        if progress is not None:
            progress(len(batch))
    return written
