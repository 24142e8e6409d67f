"""Google's OAuth 2 token endpoint for service accounts (RFC 7523 JWT bearer grant), simulated.

google-auth's ``service_account.Credentials`` posts
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<RS256 JWT>`` to the account's
``token_uri``; point that at ``https://<sim>/token`` and it gets an access token for
``messages:send``.

The assertion's ``aud`` must be this endpoint's own URL or Google's token endpoint: google-auth
(2.62) always signs for ``https://oauth2.googleapis.com/token`` whatever ``token_uri`` says,
so the simulator accepts what Google accepts.

Signatures are verified only for issuers whose public key was registered through
``POST /_sim/fcm/accounts``. Any other issuer's assertion is accepted unverified, so that a
test can use a throwaway service account without a setup step; its claims are still checked.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPES = frozenset(
    {"https://www.googleapis.com/auth/firebase.messaging", "https://www.googleapis.com/auth/cloud-platform"}
)
# What google-auth puts in "aud", and the older names Google still honours.
GOOGLE_TOKEN_URLS = (
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
)
CLOCK_SKEW = 60
# Google refuses assertions meant to live longer than an hour.
MAX_ASSERTION_LIFETIME = 3600
TOKEN_LIFETIME = 3600
# Expired tokens are swept only when the table grows past this, keeping /token O(1) normally.
SWEEP_ABOVE = 10_000


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def as_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True, slots=True)
class AccessToken:
    issuer: str
    expires_at: float


class TokenIssuer:
    def __init__(self) -> None:
        self.public_keys: dict[str, rsa.RSAPublicKey] = {}
        self.tokens: dict[str, AccessToken] = {}

    def register(self, client_email: str, public_key_pem: str) -> None:
        """Verify ``client_email``'s assertions with this key (a PEM public key or certificate)."""
        data = public_key_pem.encode()
        if b"CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("service account keys are RSA keys")
        self.public_keys[client_email] = key

    def issue(self, form: bytes, token_url: str) -> dict[str, Any]:
        """Exchange a JWT bearer assertion for an access token, or raise OAuthError."""
        fields = parse_qs(form.decode("utf-8", "replace"))
        grant_type = fields.get("grant_type", [""])[0]
        if grant_type != JWT_BEARER:
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = fields.get("assertion", [""])[0]
        claims = self._verified_claims(assertion)
        self._check_claims(claims, token_url)

        if len(self.tokens) > SWEEP_ABOVE:
            self._sweep()
        access_token = "ya29.sim-" + secrets.token_urlsafe(32)
        self.tokens[access_token] = AccessToken(claims["iss"], time.time() + TOKEN_LIFETIME)
        return {"access_token": access_token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}

    def check(self, access_token: str) -> AccessToken | None:
        token = self.tokens.get(access_token)
        if token is None or token.expires_at <= time.time():
            return None
        return token

    def reset(self, keep_tokens: bool) -> None:
        # Registered keys are configuration, like the service account itself: they survive.
        if not keep_tokens:
            self.tokens.clear()

    def _verified_claims(self, assertion: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise OAuthError("invalid_grant", f"Invalid JWT: {error}") from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "Invalid JWT: the signing algorithm must be RS256.")
        key = self.public_keys.get(claims.get("iss", ""))
        if key is not None:
            try:
                # Claims are checked by hand below, for Google's error messages.
                jwt.decode(
                    assertion,
                    key,
                    algorithms=["RS256"],
                    options={
                        "verify_aud": False,
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                )
            except jwt.InvalidSignatureError:
                raise OAuthError("invalid_grant", "Invalid JWT Signature.") from None
            except jwt.PyJWTError as error:
                raise OAuthError("invalid_grant", f"Invalid JWT: {error}") from None
        return claims

    @staticmethod
    def _check_claims(claims: dict[str, Any], token_url: str) -> None:
        if not isinstance(claims.get("iss"), str) or not claims["iss"]:
            raise OAuthError("invalid_grant", "Invalid JWT: the iss claim is missing.")
        aud = claims.get("aud")
        if not any(_same_url(aud, url) for url in (token_url, *GOOGLE_TOKEN_URLS)):
            raise OAuthError(
                "invalid_grant", f"Invalid JWT: Failed audience check. The right audience is {token_url}"
            )
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or iat > now + CLOCK_SKEW
            or exp <= now
            or exp - iat > MAX_ASSERTION_LIFETIME
        ):
            raise OAuthError(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        scopes = claims.get("scope")
        if not isinstance(scopes, str) or not FCM_SCOPES.intersection(scopes.split()):
            raise OAuthError("invalid_grant", "Invalid OAuth scope or ID token audience provided.")

    def _sweep(self) -> None:
        now = time.time()
        self.tokens = {value: token for value, token in self.tokens.items() if token.expires_at > now}


def _same_url(aud: Any, url: str) -> bool:
    """Equal as URLs: case-insensitive scheme and host, default port, no trailing slash."""
    if not isinstance(aud, str):
        return False

    def key(value: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(value)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
        return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")

    try:
        return key(aud) == key(url)
    except ValueError:
        return False
