"""Canonical ids: a gateway delivered a message and answered that the registration now has another
id (ADM's ``registrationID``, like FCM's legacy ``canonical_ids``). The new id replaces the
player's identifier, so the next notification goes to the id the gateway wants."""

from __future__ import annotations

from uuid import UUID

from django.db import IntegrityError, transaction

from players.models import Player

# Why a player stops being messageable when its canonical id is another player's identifier.
DUPLICATE_REASON = "CanonicalIdOfAnotherPlayer"


def player_identifiers_replace(*, app_id: UUID, replacements: dict[UUID, tuple[str, str]]) -> None:
    """Store ``{player id: (identifier sent to, canonical id)}``; runs inside the batch's record.

    Per player:

    1. only while the player still has the identifier that was sent to: a registration that
       changed it since (the SDK's newer token) wins;
    2. the identifier becomes the canonical id, in a savepoint: a unique clash (another player of
       the app already has that id) must not abort the batch's record;
    3. on that clash the other player is the live registration of the same app instance, so this
       one is unsubscribed (``DUPLICATE_REASON``): otherwise the device would get every
       notification twice.
    """
    for player_id, (sent, canonical) in replacements.items():
        current = Player.objects.filter(pk=player_id, app_id=app_id, identifier=sent)
        try:
            with transaction.atomic():
                current.update(identifier=canonical)
        except IntegrityError:
            current.update(
                invalid_identifier=True, notification_types=-2, unsubscribed_reason=DUPLICATE_REASON
            )
