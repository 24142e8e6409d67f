"""``POST /mfp/api/az/v1/token`` and ``/introspection`` (mobilefirst-push-api.md §2.2-2.3).

django-oauth-toolkit issues the tokens. This wrapper adds what MFP clients expect of the
endpoint: only ``client_credentials``, ``401`` with ``WWW-Authenticate: Basic realm="mfp"``
for a bad client, and one small unchunked JSON body.
"""

from __future__ import annotations

import orjson
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.views import TokenView

from imfpush.oauth import active_token

GRANT = "client_credentials"


def _oauth_error(status: int, error: str, description: str, **headers: str) -> HttpResponse:
    response = HttpResponse(
        orjson.dumps({"error": error, "error_description": description}),
        status=status,
        content_type="application/json",
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@method_decorator(csrf_exempt, name="dispatch")
class MfpTokenView(TokenView):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        grant_type = request.POST.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type != GRANT:
            return _oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported")
        response = super().post(request, *args, **kwargs)
        if response.status_code == 401:
            return _oauth_error(
                401, "invalid_client", "Client authentication failed", WWW_Authenticate='Basic realm="mfp"'
            )
        if response.status_code == 200:  # MFP clients build "<token_type> <access_token>"
            body = orjson.loads(response.content)
            body.pop("refresh_token", None)
            response.content = orjson.dumps(body)
            response["Content-Type"] = "application/json"
        return response


@method_decorator(csrf_exempt, name="dispatch")
class MfpIntrospectionView(View):
    """RFC 7662, for callers holding a token with ``authorization.introspect``."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        caller = active_token(request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[2].strip())
        if caller is None:
            return _oauth_error(
                401, "invalid_token", "A valid Bearer token is required", WWW_Authenticate="Bearer"
            )
        if "authorization.introspect" not in caller.scope.split():
            return _oauth_error(
                403,
                "insufficient_scope",
                "authorization.introspect is required",
                WWW_Authenticate='Bearer error="insufficient_scope", scope="authorization.introspect"',
            )
        token = active_token(request.POST.get("token", ""))
        if token is None or token.application.organization_id != caller.application.organization_id:
            body = {"active": False}
        else:
            body = {
                "active": True,
                "scope": token.scope,
                "client_id": token.application.client_id,
                "token_type": "Bearer",
                "exp": int(token.expires.timestamp()),
            }
        response = HttpResponse(orjson.dumps(body), content_type="application/json")
        response["Cache-Control"] = "no-store"
        return response
