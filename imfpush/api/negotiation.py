"""Accept and Content-Type rules of /imfpush/v1 (mobilefirst-push-api.md §1.3)."""

from __future__ import annotations

import orjson
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer


class MfpJsonRenderer(BaseRenderer):
    """Keys sorted alphabetically, as in every MFP example; ``charset=UTF-8`` as MFP sends it."""

    media_type = "application/json"
    format = "json"
    charset = "UTF-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


class MfpNegotiation(BaseContentNegotiation):
    """Accept is checked by the view itself, in the documented order of checks."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _media_ranges(header: str):
    for part in header.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        yield media.lower(), quality


def accepts(header: str | None, media_type: str) -> bool:
    """Whether ``Accept`` allows ``media_type`` with q > 0; an absent header allows anything."""
    if not header or not header.strip():
        return True
    main = media_type.split("/")[0]
    return any(
        quality > 0 and media in (media_type, f"{main}/*", "*/*") for media, quality in _media_ranges(header)
    )


def content_type_of(request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
