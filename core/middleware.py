from __future__ import annotations

import logging
import re

from django.conf import settings
from django.http import JsonResponse

logger = logging.getLogger(__name__)
_REPEATED_SLASHES = re.compile(r"/{2,}")
# Paths served as HTML (dashboard, docs); everything else answers errors in JSON.
HTML_PREFIXES = ("/admin", "/api/docs", "/static")


class CollapseSlashesMiddleware:
    """Clients configured with a trailing-slash host send ``//notifications``; route it anyway."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "//" in request.path_info:
            request.path_info = _REPEATED_SLASHES.sub("/", request.path_info)
            request.path = _REPEATED_SLASHES.sub("/", request.path)
        return self.get_response(request)


class JsonErrorsMiddleware:
    """No HTML error page and no traceback on the API, even for errors outside DRF views."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith(HTML_PREFIXES):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return JsonResponse({"errors": ["Internal Server Error"]}, status=500)


class DashboardSecurityHeadersMiddleware:
    """``Content-Security-Policy`` on the dashboard (``HERALD_DASHBOARD_CSP``). Django 5.2 has no
    CSP support (6.0 adds it), and one fixed header for one URL prefix needs no library:
    django-csp's per-view policies and nonces would go unused. The other security headers
    (nosniff, Referrer-Policy, X-Frame-Options, COOP, HSTS) come from Django's own middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/admin") and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.HERALD_DASHBOARD_CSP
        return response
