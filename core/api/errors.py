"""The OneSignal error shapes (docs/onesignal-api.md §2), raised from anywhere in a request."""

from __future__ import annotations

from typing import Any

APP_ID_NOT_FOUND = "app_id not found. You may be missing a Content-Type: application/json header."
INVALID_JSON = "Invalid JSON body"
RATE_LIMITED = "API rate limit exceeded."
NO_USER_WITH_ID = "No user with this id found"

LEGACY_APP_KEY_ERROR = {
    "errors": [
        "Please include a case-sensitive header of Authorization: Basic <YOUR-REST-API-KEY-HERE> "
        "with a valid REST API key."
    ],
    "reference": ["https://documentation.onesignal.com/docs/accounts-and-keys#section-keys-ids"],
}
LEGACY_USER_KEY_ERROR = {
    "errors": [
        "Please include a case-sensitive header of Authorization: Basic <YOUR-USER-AUTH-KEY-HERE> "
        "with a valid User Auth key."
    ],
    "reference": ["https://documentation.onesignal.com/docs/accounts-and-keys#section-user-auth-key"],
}
CURRENT_KEY_ERROR = {
    "errors": [
        "Access denied.  Please include an 'Authorization: ...' header with a valid API key "
        "(https://documentation.onesignal.com/docs/en/keys-and-ids#api-keys)."
    ]
}


class ApiError(Exception):
    """An error response: status plus the exact body OneSignal clients expect."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers = headers or {}

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, {"errors": [message]})

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        return cls(404, {"errors": [message]})


def auth_error(*, legacy_root: bool, user_key: bool) -> ApiError:
    """Legacy ``/api/v1`` answers 400 with OneSignal's old bodies; the current root 403."""
    if legacy_root:
        return ApiError(400, LEGACY_USER_KEY_ERROR if user_key else LEGACY_APP_KEY_ERROR)
    return ApiError(403, CURRENT_KEY_ERROR)
