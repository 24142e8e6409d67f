"""``/apps``: list, create, get, status and delete applications (§3.1)."""

from __future__ import annotations

from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from imfpush.api.base import MfpAppView, MfpView
from imfpush.api.listing import FilterField, page, parse_filters, query_flag, text_field
from imfpush.models import MfpApplication
from imfpush.scopes import Requirement
from imfpush.services import (
    check_application_id,
    mfp_application_create,
    mfp_application_delete,
    mfp_application_set_enabled,
)

APPS_READ = Requirement("apps.read")
APPS_WRITE = Requirement("apps.write")

# "apps with credentials for that platform" (§5): the credential each platform needs.
PLATFORM_CREDENTIALS = {
    "A": Q(app__apns_p8__isnull=False) | Q(app__apns_p12__isnull=False),
    "G": Q(app__fcm_service_account_json__isnull=False),
    "W": Q(app__wns_client_secret__isnull=False),
}


def _platform_condition(operator: str, value: str) -> Q:
    return PLATFORM_CREDENTIALS.get(value, Q(pk__in=[]))


APPLICATION_FILTERS = {
    "applicationId": text_field("application_id"),
    "platform": FilterField(("==",), _platform_condition),
}


def application_json(view: MfpView, record: MfpApplication, *, full: bool = True) -> dict:
    item = {"applicationId": record.application_id, "href": view.href("apps", record.application_id)}
    if full:
        item["enabled"] = record.enabled
    return item


class ApplicationCollectionView(MfpView):
    requirements = {"GET": APPS_READ, "POST": APPS_WRITE}

    def scope_application_id(self) -> str | None:
        if self.request.method == "POST":
            return check_application_id(self.body_object().get("applicationId"))
        return None  # GET /apps/ needs push.application.*

    def get(self, request, *args, **kwargs):
        expand = query_flag(request, "expand", "expend")
        queryset = MfpApplication.objects.filter(organization=self.organization).filter(
            parse_filters(request, APPLICATION_FILTERS)
        )
        return Response(
            page(
                request,
                queryset.select_related("app").order_by("created_at", "app_id"),
                "applications",
                lambda record: application_json(self, record, full=expand),
            )
        )

    def post(self, request, *args, **kwargs):
        record = mfp_application_create(organization=self.organization, body=self.body_object())
        body = application_json(self, record)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["href"]})


class ApplicationDetailView(MfpAppView):
    requirements = {"GET": APPS_READ, "DELETE": APPS_WRITE}

    def get(self, request, *args, **kwargs):
        return Response(application_json(self, self.mfp_application))

    def delete(self, request, *args, **kwargs):
        mfp_application_delete(record=self.mfp_application)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApplicationStatusView(MfpAppView):
    requirements = {"GET": APPS_READ, "PUT": APPS_WRITE}

    def get(self, request, *args, **kwargs):
        return Response({"enabled": self.mfp_application.enabled})

    def put(self, request, *args, **kwargs):
        record = mfp_application_set_enabled(record=self.mfp_application, body=self.body_object())
        return Response({"applicationId": record.application_id, "enabled": record.enabled})
