from __future__ import annotations

# /imfpush/v1 (MobileFirst) has a schema of its own, served at /imfpush/v1/swagger.json.
SEPARATELY_DOCUMENTED = ("/api/v1/", "/imfpush/")


def only_root_api_paths(endpoints):
    """Document each route once: the ``/api/v1`` copies and trailing-slash twins are identical."""
    return [
        endpoint
        for endpoint in endpoints
        if not endpoint[0].startswith(SEPARATELY_DOCUMENTED)
        and not (endpoint[0].endswith("/") and endpoint[0] != "/")
    ]
