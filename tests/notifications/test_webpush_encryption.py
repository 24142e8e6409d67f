"""The Web Push body (RFC 8291 aes128gcm), written on cryptography's primitives, against http_ece:
the library that Herald used before, which pywebpush uses and the gateway simulator decrypts with."""

from __future__ import annotations

import os

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from notifications.providers.webpush import MAX_PLAINTEXT_BYTES, encrypt


def browser() -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
    """A subscription as a browser makes it: its private key, p256dh and auth secret."""
    private = ec.generate_private_key(ec.SECP256R1())
    p256dh = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return private, p256dh, os.urandom(16)


@pytest.mark.parametrize(
    "plaintext",
    [b'{"alert": "hi"}', "ünïcødé 🎉".encode() * 40, b"x" * MAX_PLAINTEXT_BYTES],
    ids=["short", "multibyte", "largest"],
)
def test_the_body_is_http_ece_s_byte_for_byte_with_the_same_salt_and_key(plaintext):
    _, p256dh, auth = browser()
    salt, ephemeral = os.urandom(16), ec.generate_private_key(ec.SECP256R1())

    ours = encrypt(plaintext, (p256dh, auth), salt=salt, ephemeral=ephemeral)

    reference = http_ece.encrypt(
        plaintext, salt=salt, private_key=ephemeral, dh=p256dh, auth_secret=auth, version="aes128gcm"
    )
    assert ours == reference


def test_the_subscriber_decrypts_it_and_every_message_has_its_own_salt_and_key():
    private, p256dh, auth = browser()
    plaintext = b'{"custom": {"i": "n-1"}, "alert": "Hello"}'

    first, second = encrypt(plaintext, (p256dh, auth)), encrypt(plaintext, (p256dh, auth))

    for body in (first, second):
        assert http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm") == plaintext
    # The header: salt (16), record size (4), key id length (1), the sender's public key (65).
    assert first[:16] != second[:16]
    assert first[21:86] != second[21:86]
    assert first[16:21] == (4096).to_bytes(4, "big") + bytes([65])


def test_another_subscriber_cannot_decrypt_it():
    _, p256dh, auth = browser()
    stranger, _, _ = browser()
    body = encrypt(b"secret", (p256dh, auth))

    with pytest.raises(http_ece.ECEException, match="InvalidTag"):
        http_ece.decrypt(body, private_key=stranger, auth_secret=auth, version="aes128gcm")
