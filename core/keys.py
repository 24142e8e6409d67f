"""API keys: random, shown once, stored as a SHA-256 hash next to a short lookup prefix.

Keys carry 256 bits of entropy, so a fast hash is enough (a slow KDF protects low-entropy
passwords, and would cost every API request milliseconds). Lookup is by prefix; the hash is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX_LENGTH = 12


@dataclass(frozen=True)
class IssuedKey:
    plaintext: str
    prefix: str
    digest: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def lookup_prefix(plaintext: str) -> str:
    return plaintext[:PREFIX_LENGTH]


def generate_key(kind: str) -> IssuedKey:
    """``kind`` is a short readable marker (``hak`` app key, ``huk`` user key)."""
    plaintext = f"{kind}_{secrets.token_urlsafe(32)}"
    return IssuedKey(plaintext=plaintext, prefix=lookup_prefix(plaintext), digest=hash_key(plaintext))


def key_matches(plaintext: str, digest: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), digest)
