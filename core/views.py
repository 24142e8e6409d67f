from __future__ import annotations

from django.http import JsonResponse


def api_not_found(request, *args, **kwargs):
    return JsonResponse({"errors": ["Not Found"]}, status=404)


def api_server_error(request, *args, **kwargs):
    return JsonResponse({"errors": ["Internal Server Error"]}, status=500)


def api_bad_request(request, exception=None, *args, **kwargs):
    return JsonResponse({"errors": ["Bad Request"]}, status=400)


def api_forbidden(request, exception=None, *args, **kwargs):
    return JsonResponse({"errors": ["Forbidden"]}, status=403)
