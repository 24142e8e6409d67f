"""Herald's URLs plus ``/bench/constant``: a bare Django view returning a constant JSON, behind the
same middleware, the framework's ceiling for the ingest benchmark. Bench-only (bench/settings.py);
the production URLconf (config/urls.py) does not have it."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as herald_urlpatterns

CONSTANT = {"success": True}


@csrf_exempt  # as every API view is (DRF's APIView): the same work per request
def constant(request):
    return JsonResponse(CONSTANT)


urlpatterns = [path("bench/constant", constant, name="bench-constant"), *herald_urlpatterns]
