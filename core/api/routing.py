from __future__ import annotations

from django.urls import path


def api_path(route: str, view, name: str):
    """The route with and without a trailing slash: no APPEND_SLASH redirect can eat a POST body."""
    return [path(route, view, name=name), path(f"{route}/", view, name=f"{name}-slash")]
