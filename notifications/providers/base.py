"""The provider interface every gateway implements (APNs, FCM, Web Push, email, SMS, WNS).

A provider turns a rendered message into the gateway's request, sends a whole batch at once
(concurrently, however its transport does that), and sorts every answer into one of four
outcomes. The pipeline never looks at gateway-specific codes.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


class Outcome(enum.Enum):
    SENT = "sent"
    # The recipient can never receive this (unregistered or invalid token): unsubscribe, no retry.
    INVALID_RECIPIENT = "invalid_recipient"
    # Worth trying again later (429, 5xx, timeouts, resets); honour retry_after when given.
    TRANSIENT = "transient"
    # Will not succeed on retry but is not the recipient's fault (bad payload, bad credentials).
    ERROR = "error"


@dataclass
class Recipient:
    player_id: UUID
    device_type: int
    identifier: str
    language: str | None
    tags: dict[str, str]
    badge_count: int = 0
    test_type: int | None = None
    web_auth: str | None = None
    web_p256: str | None = None


@dataclass
class RenderedMessage:
    """What one recipient should see, already localised and personalised."""

    notification_id: str
    heading: str | None
    content: str | None
    subtitle: str | None
    body: dict[str, Any]  # the notification request, for provider-specific fields
    ttl_seconds: int = 259_200  # what is left of the notification's ttl when sent


# ``SendResult.extra`` key: the badge a delivered APNs notification set on the device, which the
# pipeline writes back to the player (``ios_badgeType``).
BADGE_COUNT = "badge_count"
# ``SendResult.extra`` key: ``(identifier sent to, canonical identifier)`` when the gateway delivered
# the message and answered that the registration now has another id (ADM's ``registrationID``);
# the pipeline stores the new one as the player's identifier (notifications/canonical_ids.py).
CANONICAL_IDENTIFIER = "canonical_identifier"


@dataclass
class SendResult:
    player_id: UUID
    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # BADGE_COUNT, CANONICAL_IDENTIFIER


class ProviderNotConfigured(Exception):
    """The app has no credentials for this gateway: every recipient ends errored."""


class Provider(ABC):
    platform: str = ""

    def __init__(self, app):
        self.app = app

    @abstractmethod
    def send(self, items: list[tuple[Recipient, RenderedMessage]]) -> list[SendResult]:
        """Deliver every item; return exactly one result per item, in any order."""
