"""OAuth 2 client-credentials tokens for the gateways that use them (Huawei Push Kit, ADM).

One cache per gateway, keyed by the token endpoint and the app's credentials (digested), holding
each access token until a minute before its ``expires_in``. ``get(..., force_refresh=True)`` is what
a provider calls once when the gateway says the token expired; ``forget`` drops a token the gateway
keeps refusing, so that the next batch starts with a new one.

Hand-written rather than requests-oauthlib: the grant is one form POST, and the two gateways differ
in their error bodies (Huawei: ``{"error": 1101, "sub_error", "error_description"}``; Login with
Amazon: ``{"error": "invalid_client", "error_description"}``), which is all this has to read.
"""

from __future__ import annotations

import hashlib
import threading
import time

import requests
from django.conf import settings

TOKEN_TIMEOUT_SECONDS = 20
TOKEN_EXPIRY_MARGIN_SECONDS = 60
DEFAULT_EXPIRES_IN = 3600


class TokenAuthError(Exception):
    """The token endpoint refused the credentials (4xx): retrying will not help."""


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or REQUESTS_CA_BUNDLE from the environment
    if settings.HERALD_GATEWAY_CA_FILE:
        session.verify = settings.HERALD_GATEWAY_CA_FILE
    return session


class ClientCredentialsTokens:
    def __init__(self, token_url_setting: str, form: dict[str, str] | None = None) -> None:
        self.token_url_setting = token_url_setting
        self.form = form or {}  # extra form fields, e.g. ADM's scope
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # key -> (access token, refresh after)

    @property
    def token_url(self) -> str:
        return getattr(settings, self.token_url_setting)

    def _key(self, client_id: str, client_secret: str) -> str:
        material = f"{self.token_url}\0{client_id}\0{client_secret}"
        return hashlib.sha256(material.encode()).hexdigest()

    def get(self, client_id: str, client_secret: str, *, force_refresh: bool = False) -> str:
        """A cached access token; raises TokenAuthError, requests.RequestException or ValueError."""
        key = self._key(client_id, client_secret)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and not force_refresh and cached[1] > time.time():
                return cached[0]
        with http_session() as session:
            response = session.post(
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                    **self.form,
                },
                timeout=TOKEN_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise TokenAuthError(_error_text(response))
        response.raise_for_status()
        answer = response.json()
        token = answer["access_token"]
        if not isinstance(token, str) or not token:
            raise ValueError("the token endpoint answered no access_token")
        expires_in = int(answer.get("expires_in") or DEFAULT_EXPIRES_IN)
        with self._lock:
            self._tokens[key] = (token, time.time() + max(0, expires_in - TOKEN_EXPIRY_MARGIN_SECONDS))
        return token

    def forget(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._tokens.pop(self._key(client_id, client_secret), None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # Never the request's secret: only what the endpoint said about it.
        for name in ("error_description", "error"):
            if body.get(name) not in (None, ""):
                return str(body[name])
    return f"http {response.status_code}"
