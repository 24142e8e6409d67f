"""An app's VAPID key pair (RFC 8292) for Web Push: generated, read from uploads, validated.

Stored forms: ``vapid_private_key`` (encrypted at rest) is base64url of the raw 32-byte P-256
scalar, py-vapid's ``Vapid.from_raw`` form; ``vapid_public_key`` is base64url of the uncompressed
public point, what browsers take as ``applicationServerKey`` (served by
``GET /apps/{app_id}/web_push_public_key`` and in the App object).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from apps.models import App
from core.api.errors import ApiError

BAD_VAPID_KEY = "vapid_private_key must be a P-256 private key: base64url of the raw 32-byte key, or PEM"
MISMATCHED_PUBLIC_KEY = (
    "vapid_public_key must be the public key of the app's vapid_private_key "
    "(it is derived from the private key: send only vapid_private_key)"
)
BAD_SUBJECT = "vapid_subject must be a mailto: or https: URL (RFC 8292)"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Strict base64url (padding optional): stray characters are an error, not skipped."""
    text = text.strip().rstrip("=")
    return base64.b64decode(text.translate(str.maketrans("-_", "+/")) + "=" * (-len(text) % 4), validate=True)


def _pair(key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(private), b64url_encode(public)


def vapid_key_pair() -> tuple[str, str]:
    """A new ``(private, public)`` pair in stored form (py-vapid generates the P-256 key)."""
    vapid = Vapid()
    vapid.generate_keys()
    return _pair(vapid.private_key)


def read_vapid_private_key(value: str) -> tuple[str, str]:
    """``(private, public)`` in stored form from base64url (raw 32 bytes, or DER) or PEM; else a 400."""
    text = value.strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise ApiError.bad_request(BAD_VAPID_KEY) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ApiError.bad_request(BAD_VAPID_KEY)
    return _pair(key)


def apply_vapid_fields(app: App, data: dict[str, Any]) -> None:
    """``PUT/POST /apps`` VAPID fields: the private key validated and normalised, the public key
    derived from it (a different one is a 400), the subject a mailto: or https: URL."""
    if data.get("vapid_private_key"):
        app.vapid_private_key, app.vapid_public_key = read_vapid_private_key(data["vapid_private_key"])
    elif "vapid_private_key" in data:
        # Cleared: a new pair is generated when the app next needs one (browsers must resubscribe).
        app.vapid_private_key = app.vapid_public_key = None
    public = data.get("vapid_public_key")
    if public and public.strip().rstrip("=") != (app.vapid_public_key or ""):
        raise ApiError.bad_request(MISMATCHED_PUBLIC_KEY)
    if "vapid_subject" in data:
        subject = (data["vapid_subject"] or "").strip()
        if subject and not subject.startswith(("mailto:", "https://")):
            raise ApiError.bad_request(BAD_SUBJECT)
        app.vapid_subject = subject or None


def ensure_vapid_keys(app: App) -> App:
    """Give ``app`` a VAPID pair if it has none (apps from before keys were generated on create,
    or whose key was cleared). Concurrent callers agree on one pair: only the first write lands."""
    if app.vapid_private_key and app.vapid_public_key:
        return app
    if app.vapid_private_key:
        _private, public = read_vapid_private_key(app.vapid_private_key)
        App.objects.filter(pk=app.pk).update(vapid_public_key=public)
        app.vapid_public_key = public
        return app
    private, public = vapid_key_pair()
    App.objects.filter(pk=app.pk, vapid_private_key__isnull=True).update(
        vapid_private_key=private, vapid_public_key=public
    )
    app.refresh_from_db(fields=["vapid_private_key", "vapid_public_key"])
    if not app.vapid_private_key:  # stored as "" rather than NULL by an older write
        App.objects.filter(pk=app.pk).update(vapid_private_key=private, vapid_public_key=public)
        app.vapid_private_key, app.vapid_public_key = private, public
    return app
