"""django-oauth-toolkit glue: confidential clients' scope patterns decide what a token may hold."""

from __future__ import annotations

import hashlib

from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from imfpush.scopes import scope_allowed

DEFAULT_SCOPE = "RegisteredClient"


class PatternScopes(BaseScopes):
    def get_all_scopes(self):
        return {DEFAULT_SCOPE: "Default scope of a confidential client; grants nothing"}

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        return [DEFAULT_SCOPE]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return [DEFAULT_SCOPE]


class ScopePatternValidator(OAuth2Validator):
    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        """All or nothing (RFC 6749 §5.2): every element must match an ``allowedScope`` pattern."""
        allowed = (client.allowed_scope or "").split()
        return all(scope == DEFAULT_SCOPE or scope_allowed(scope, allowed) for scope in scopes)


def active_token(raw: str):
    """The stored access token for ``raw``, or None when unknown, expired or no longer allowed.

    Only the SHA-256 of a token is stored. Narrowing a client's ``allowedScope`` (or deleting
    the client) takes effect at the next use of its tokens (§2.1).
    """
    if not raw:
        return None
    checksum = hashlib.sha256(raw.encode()).hexdigest()
    token = (
        get_access_token_model()
        .objects.select_related("application__organization")
        .filter(token_checksum=checksum, expires__gt=timezone.now())
        .first()
    )
    if token is None or token.application is None:
        return None
    allowed = token.application.allowed_scope.split()
    if not all(scope == DEFAULT_SCOPE or scope_allowed(scope, allowed) for scope in token.scope.split()):
        return None
    return token
