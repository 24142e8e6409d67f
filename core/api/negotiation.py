from __future__ import annotations

from rest_framework.negotiation import BaseContentNegotiation


class AlwaysJson(BaseContentNegotiation):
    """OneSignal answers JSON whatever ``Accept`` says (the SDK sends
    ``application/vnd.onesignal.v1+json``), so ``Accept`` never causes a 406 here."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
