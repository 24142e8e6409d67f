from __future__ import annotations


def only_root_api_paths(endpoints):
    """Document each route once: the ``/api/v1`` copies and trailing-slash twins are identical."""
    return [
        endpoint
        for endpoint in endpoints
        if not endpoint[0].startswith("/api/v1/") and not (endpoint[0].endswith("/") and endpoint[0] != "/")
    ]
