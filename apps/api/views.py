from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from apps.api.serializers import AppInputSerializer, AppOutputSerializer
from apps.selectors import apps_with_player_counts
from apps.services import app_create, app_update
from apps.vapid import ensure_vapid_keys
from core.api.base import DeviceView, UserKeyView, parse_uuid
from core.api.errors import ApiError
from core.api.schema_docs import ERROR_RESPONSES
from webhooks.services import onesignal_webhooks_json

USER_KEY = [{"user_key": []}]


def _validated_app_input(view: UserKeyView) -> dict:
    serializer = AppInputSerializer(data=view.body)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    org_id = data.pop("organization_id", None)
    if org_id is not None and org_id != view.organization.id:
        raise ApiError.bad_request("organization_id does not match the User key's organization")
    return data


def app_detail(app) -> dict:
    """The App object, plus its event webhooks (URLs and events, never secrets) when it has any."""
    data = AppOutputSerializer(app).data
    webhooks = onesignal_webhooks_json(app)
    if webhooks:
        data["webhooks"] = webhooks
    return data


class AppListCreateView(UserKeyView):
    @extend_schema(
        operation_id="get_apps",
        summary="View apps",
        auth=USER_KEY,
        responses={200: AppOutputSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request):
        apps = apps_with_player_counts(self.scoped_apps())
        return Response(AppOutputSerializer(apps, many=True).data)

    @extend_schema(
        operation_id="create_app",
        summary="Create an app",
        auth=USER_KEY,
        request=AppInputSerializer,
        responses={200: AppOutputSerializer, **ERROR_RESPONSES},
    )
    def post(self, request):
        data = _validated_app_input(self)
        if not (data.get("name") or "").strip():
            raise ApiError.bad_request("Name Enter an app name")
        app, app_key = app_create(organization=self.organization, data=data)
        return Response(AppOutputSerializer(app, context={"basic_auth_key": app_key}).data)


class AppDetailView(UserKeyView):
    def scoped_app(self, app_id: str):
        app_uuid = parse_uuid(app_id)
        app = apps_with_player_counts(self.scoped_apps()).filter(pk=app_uuid).first() if app_uuid else None
        if app is None:
            raise ApiError.not_found(f"Couldn't find app with id = {app_id}"[:300])
        return app

    @extend_schema(
        operation_id="get_app",
        summary="View an app",
        auth=USER_KEY,
        responses={
            200: AppOutputSerializer,
            404: OpenApiResponse(description="Unknown app"),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request, app_id: str):
        return Response(app_detail(self.scoped_app(app_id)))

    @extend_schema(
        operation_id="update_app",
        summary="Update an app",
        auth=USER_KEY,
        request=AppInputSerializer,
        responses={
            200: AppOutputSerializer,
            404: OpenApiResponse(description="Unknown app"),
            **ERROR_RESPONSES,
        },
    )
    def put(self, request, app_id: str):
        app = self.scoped_app(app_id)
        data = _validated_app_input(self)
        if "name" in data and not data["name"].strip():
            raise ApiError.bad_request("Name Enter an app name")
        app_update(app=app, data=data)
        return Response(app_detail(self.scoped_app(app_id)))


class WebPushPublicKeyView(DeviceView):
    """The app's VAPID public key, for the web SDK's ``pushManager.subscribe`` (its
    ``applicationServerKey``). OneSignal serves it in its web SDK config; Herald serves it here,
    keyless like the other device endpoints. An app without a key pair gets one now."""

    @extend_schema(
        operation_id="get_web_push_public_key",
        summary="View an app's Web Push (VAPID) public key",
        auth=[{"app_key": []}, {}],
        responses={
            200: inline_serializer(
                "WebPushPublicKey",
                {"vapid_public_key": serializers.CharField(help_text="base64url, uncompressed P-256 point")},
            ),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request, app_id: str):
        app = ensure_vapid_keys(self.app)
        return Response({"vapid_public_key": app.vapid_public_key})
