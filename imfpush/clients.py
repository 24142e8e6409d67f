"""Writes for OAuth confidential clients (registered in the dashboard, never through /imfpush)."""

from __future__ import annotations

import secrets

from django.db import transaction
from oauth2_provider.models import get_access_token_model

from apps.models import Organization
from imfpush.models import ConfidentialClient


def _new_secret() -> str:
    return secrets.token_urlsafe(32)  # [A-Za-z0-9_-]: unambiguous inside HTTP Basic


@transaction.atomic
def confidential_client_create(
    *,
    organization: Organization,
    client_id: str,
    allowed_scope: str = "*",
    display_name: str = "",
    secret: str | None = None,
) -> tuple[ConfidentialClient, str]:
    """Returns the client and its secret's plaintext, which is shown only now (it is hashed)."""
    plaintext = secret or _new_secret()
    client = ConfidentialClient(
        organization=organization,
        client_id=client_id,
        client_secret=plaintext,
        name=display_name or client_id,
        allowed_scope=allowed_scope,
        client_type=ConfidentialClient.CLIENT_CONFIDENTIAL,
        authorization_grant_type=ConfidentialClient.GRANT_CLIENT_CREDENTIALS,
    )
    client.full_clean(exclude=["client_secret", "user"])
    client.save()
    return client, plaintext


@transaction.atomic
def confidential_client_rotate_secret(*, client: ConfidentialClient) -> str:
    """A new secret; the client's tokens stop working at once."""
    plaintext = _new_secret()
    client.client_secret = plaintext
    client.save()
    get_access_token_model().objects.filter(application=client).delete()
    return plaintext
