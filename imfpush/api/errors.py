from __future__ import annotations

import orjson
from django.http import HttpResponse
from django.utils import translation

from imfpush.errors import PATH_NOT_FOUND, MfpError


def unknown_path(request, *args, **kwargs) -> HttpResponse:
    """``404`` ``FPWSE0001E`` for any path under /imfpush/v1 that is not an operation."""
    with translation.override(translation.get_language_from_request(request)):
        body = MfpError.not_found(PATH_NOT_FOUND).body()
    return HttpResponse(orjson.dumps(body), status=404, content_type="application/json; charset=UTF-8")
