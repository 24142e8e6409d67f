"""The ``{"code", "message"}`` error body of ``/imfpush/v1`` (mobilefirst-push-api.md §1.7).

``code`` never changes with the language; ``message`` is translated through Django's i18n
(imfpush/locale) according to ``Accept-Language``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

INVALID_JSON = _(
    "Bad Request - The request was not understood by the push server. An invalid JSON could result in "
    "this error code."
)
INVALID_DATA = _(
    "Bad Request - The request was not understood by the push server. An invalid data in the input."
)
UNAUTHORIZED = _(
    "Unauthorized - The caller is either not authenticated or not authorized to make this request."
)
FORBIDDEN = _("The user is not authorized to call this service.")
APP_NOT_FOUND = _("The application does not exist.")
DEVICE_NOT_FOUND = _("A device registration with the specified deviceId is not found.")
TAG_NOT_FOUND = _("The tag with the specified tagName is not found.")
MESSAGE_NOT_FOUND = _("The message with the specified messageId is not found.")
WEBHOOK_NOT_FOUND = _("The webhook does not exist.")
SUBSCRIPTION_NOT_FOUND = _("The subscription does not exist.")
PATH_NOT_FOUND = _("The requested resource does not exist.")
CONFIG_NOT_FOUND = _("The %(name)s configuration is not set for this application.")
UNSUPPORTED_CONTENT_TYPE = _(
    "Unsupported Content type - The content type specified in Content-Type header is not application/json."
)
UNSUPPORTED_ACCEPT = _(
    "Unsupported Accept type - The content type specified in Accept header is not application/json."
)
METHOD_NOT_ALLOWED = _("The method %(method)s is not allowed on this resource.")
BODY_TOO_LARGE = _("The request body is larger than %(limit)s bytes.")
ALREADY_EXISTS = _("The %(kind)s %(name)s already exists.")
APP_DISABLED = _("The application is disabled: messages cannot be sent to it.")
INVALID_FILTER = _("Invalid filter %(filter)s: %(reason)s")
MISSING_PARAMETER = _("The query parameter %(name)s is required.")
INVALID_OFFSET = _("The offset must be a non-negative integer.")
INVALID_SIZE = _("The size must be a positive integer.")
INVALID_PROPERTY = _("Bad Request - The property %(name)s is missing or invalid: %(reason)s")
USER_ID_TOO_LONG = _("A device registration has userId longer than 254 characters.")
SMS_NOT_CONFIGURED = _("SMS cannot be sent: the smsConf configuration is not set for this application.")
INTERNAL_ERROR = _("An internal error occurred.")
NUL_CHARACTER = _("must not contain the NUL character")
RATE_LIMITED = _("Too many requests - retry after the number of seconds in the Retry-After header.")


class MfpError(Exception):
    """An error answered with the MFP error body; ``params`` fill the message's placeholders."""

    def __init__(
        self,
        status: int,
        code: str,
        message,
        *,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.params = params or {}
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict:
        text = str(self.message)
        if self.params:
            text = text % self.params
        return {"code": self.code, "message": text, **self.extra}

    @classmethod
    def not_found(cls, message=APP_NOT_FOUND, code: str = "FPWSE0001E") -> MfpError:
        return cls(404, code, message)

    @classmethod
    def invalid(cls, name: str, reason: str) -> MfpError:
        return cls(400, "FPWSE0005E", INVALID_PROPERTY, params={"name": name, "reason": reason})

    @classmethod
    def conflict(cls, kind: str, name: str) -> MfpError:
        return cls(409, "FPWSE0002E", ALREADY_EXISTS, params={"kind": kind, "name": name})
