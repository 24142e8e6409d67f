"""The /imfpush part of ``bootstrap_demo``: a MobileFirst applicationId and a client allowed everything."""

from __future__ import annotations

import contextlib
import re

from django.db import transaction

from apps.models import App
from imfpush.clients import confidential_client_create, confidential_client_rotate_secret
from imfpush.errors import MfpError
from imfpush.models import ConfidentialClient
from imfpush.services import mfp_application_assign

DEMO_APPLICATION_ID = "com.herald.demo"
DEMO_CLIENT_NAME = "Herald demo (every scope)"


def _client_id_for(app: App, org_name: str) -> str:
    """``demo`` for the demo organization, ``<org>-demo`` for another; ids are installation-wide."""
    slug = re.sub(r"[^A-Za-z0-9._~-]+", "-", org_name).strip("-")[:200] or "org"
    wanted = "demo" if org_name == "demo" else f"{slug}-demo"
    taken = ConfidentialClient.objects.filter(client_id=wanted).exclude(organization_id=app.organization_id)
    return f"{wanted}-{app.organization_id.hex[:8]}" if taken.exists() else wanted


@transaction.atomic
def mfp_demo_bootstrap(*, app: App, org_name: str) -> tuple[str, str]:
    """Give the demo app the applicationId ``com.herald.demo`` and return ``(client_id, secret)`` of
    a confidential client allowed every scope (``*``).

    Idempotent: the secret is stored hashed, so a re-run cannot print the old one; it rotates the
    secret (the previous one and its tokens stop working) and prints the new one.
    """
    # If another app of the organization took the id through the API, leave both alone.
    with contextlib.suppress(MfpError):
        mfp_application_assign(app=app, application_id=DEMO_APPLICATION_ID)
    client_id = _client_id_for(app, org_name)
    client = ConfidentialClient.objects.filter(client_id=client_id).first()
    if client is None:
        _client, secret = confidential_client_create(
            organization=app.organization,
            client_id=client_id,
            allowed_scope="*",
            display_name=DEMO_CLIENT_NAME,
        )
        return client_id, secret
    if client.allowed_scope != "*":
        client.allowed_scope = "*"
        client.save(update_fields=["allowed_scope"])
    return client_id, confidential_client_rotate_secret(client=client)
