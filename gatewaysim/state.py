"""What the simulators remember: exact counters, recent deliveries, fault plans, duplicates.

All of it lives in one process and one event loop, so nothing here needs a lock. Every
operation on the request path is O(1): deliveries go into a bounded deque, and duplicate
detection keeps a set of 16-byte digests per platform.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from gatewaysim.faults import FaultPlan

# Every platform Herald delivers to; stats list them all so their shape never changes as
# simulators are added.
PLATFORMS = ("apns", "fcm", "webpush", "email", "sms", "wns", "hms", "adm")
DEFAULT_MAX_DELIVERIES = 2_000_000
REDACTED = b"[redacted]"


@dataclass(slots=True)
class Stats:
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0


class Delivery(NamedTuple):
    # Raw bytes rather than parsed objects: at two million records a parsed JSON message
    # costs several times its wire size. They are decoded only when the control API asks.
    platform: str
    token: str | None
    status: int
    headers: bytes
    body: bytes
    received_at: float
    duplicate: bool


PayloadDecoder = Callable[[bytes], Any]


class SimState:
    def __init__(self, *, record: bool = True, max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> None:
        self.recording = record
        self.stats = {platform: Stats() for platform in PLATFORMS}
        self.deliveries: deque[Delivery] = deque(maxlen=max_deliveries)
        self.faults: dict[str, FaultPlan] = {}
        self._seen: dict[str, set[bytes]] = {platform: set() for platform in PLATFORMS}
        # How each platform turns a recorded body into what the device would see.
        self.decoders: dict[str, PayloadDecoder] = {}
        self._reset_hooks: list[Callable[[bool], None]] = []

    def on_reset(self, hook: Callable[[bool], None]) -> None:
        """``hook(keep_tokens)`` runs on every reset; gateways clear their own state with it."""
        self._reset_hooks.append(hook)

    def reset(self, *, keep_tokens: bool = False) -> None:
        for platform in PLATFORMS:
            self.stats[platform] = Stats()
            self._seen[platform].clear()
        self.deliveries.clear()
        self.faults.clear()
        for hook in self._reset_hooks:
            hook(keep_tokens)

    def seen_before(self, platform: str, token: str, identity: str) -> bool:
        """Whether this (token, identity) was accepted before; remembers it if not."""
        # A digest instead of the pair keeps a million entries near 100 MB.
        key = hashlib.blake2b(f"{token}\0{identity}".encode(), digest_size=16).digest()
        seen = self._seen[platform]
        if key in seen:
            return True
        seen.add(key)
        return False

    def record(
        self,
        platform: str,
        *,
        token: str | None,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        duplicate: bool = False,
        received_at: float | None = None,
    ) -> None:
        stats = self.stats[platform]
        stats.received += 1
        if status < 300:
            stats.accepted += 1
            if duplicate:
                stats.duplicates += 1
        else:
            stats.rejected += 1
        if self.recording:
            self.deliveries.append(
                Delivery(
                    platform,
                    token,
                    status,
                    _pack_headers(headers),
                    body,
                    time.time() if received_at is None else received_at,
                    duplicate,
                )
            )

    def stats_dict(self) -> dict[str, dict[str, int]]:
        return {platform: asdict(stats) for platform, stats in self.stats.items()}

    def find(self, platform: str | None = None, token: str | None = None) -> Iterator[dict[str, Any]]:
        for delivery in list(self.deliveries):
            if platform is not None and delivery.platform != platform:
                continue
            if token is not None and delivery.token != token:
                continue
            decode = self.decoders.get(delivery.platform, _text)
            yield {
                "platform": delivery.platform,
                "token": delivery.token,
                "status": delivery.status,
                "headers": _unpack_headers(delivery.headers),
                "payload": decode(delivery.body),
                "received_at": delivery.received_at,
                "duplicate": delivery.duplicate,
            }


def _pack_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    # One bytes object instead of a list of tuples: a third of the memory per record.
    return b"\n".join(
        name + b"\0" + (_redact(value) if name == b"authorization" else value) for name, value in headers
    )


def _unpack_headers(packed: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if packed:
        for line in packed.split(b"\n"):
            name, _, value = line.partition(b"\0")
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    return headers


def _redact(value: bytes) -> bytes:
    # Keep the scheme: "Bearer" versus "key=" tells which auth a client used.
    scheme, space, _ = value.partition(b" ")
    return scheme + b" " + REDACTED if space else REDACTED


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace")
