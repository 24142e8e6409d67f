"""Secrets at rest: Fernet tokens under a MultiFernet, so keys can be rotated.

The first key in ``HERALD_ENCRYPTION_KEYS`` encrypts; every key decrypts. ``rotate`` re-encrypts
an old token under the first key (see ``manage.py rotate_encryption``).
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("HERALD_ENCRYPTION_KEYS is empty: secrets cannot be stored.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "HERALD_ENCRYPTION_KEYS must hold url-safe base64 32-byte Fernet keys."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.HERALD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted: HERALD_ENCRYPTION_KEYS lacks the key it was written with."
        ) from exc


def rotate(token: str) -> str:
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column whose value is a Fernet token in the database and plaintext in Python.

    Nothing may filter on it (the ciphertext is randomised), so lookups are refused.
    """

    description = "Text encrypted at rest with Fernet"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise TypeError(f"{self.__class__.__name__} cannot be queried with '{lookup_name}'.")
