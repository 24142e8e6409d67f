"""``/apps/{applicationId}/devices``: register, list, read, update and delete devices (§3.3)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from imfpush.api.base import MfpAppView, MfpView
from imfpush.api.listing import (
    OPERATORS,
    FilterField,
    page,
    parse_filters,
    query_flag,
    query_value,
    text_field,
)
from imfpush.device_selectors import (
    PLATFORM_DEVICE_TYPES,
    device_id_condition,
    mfp_device_or_404,
    mfp_devices,
    platform_of,
    registration_of,
    with_player_id_text,
)
from imfpush.devices import device_delete, device_register, device_update
from imfpush.scopes import Requirement
from players.models import Player

DEVICES_READ = Requirement("devices.read", aliases=("devices.write",), mobile_client=True)
DEVICES_LIST = Requirement("devices.read", aliases=("devices.write",))
DEVICES_WRITE = Requirement("devices.write", mobile_client=True)


def mfp_time(moment: datetime) -> str:
    """UTC ISO 8601 with whole seconds, as MFP writes it (§1.5)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _platform_condition(operator: str, value: str) -> Q:
    device_type = PLATFORM_DEVICE_TYPES.get(value)
    return Q(device_type=device_type) if device_type is not None else Q(pk__in=[])


DEVICE_FILTERS = {
    "platform": FilterField(("==",), _platform_condition),
    "deviceId": FilterField(OPERATORS, device_id_condition),
    "userId": text_field("external_user_id"),
    "phoneNumber": text_field("mfp_registration__phone_number"),
    "token": text_field("identifier"),
}


def device_json(view: MfpView, player: Player, *, full: bool = True) -> dict:
    """The device; abbreviated (``deviceId``, ``href``, ``userId``) unless ``full`` (§1.6)."""
    registration = registration_of(player)
    device_id = registration.device_id if registration is not None else str(player.id)
    item = {
        "deviceId": device_id,
        "href": view.href("apps", view.application_id, "devices", device_id),
        "userId": player.external_user_id or "",
    }
    if not full:
        return item
    item.update(
        createdMode=registration.created_mode if registration is not None else "API",
        createdTime=mfp_time(player.created_at),
        lastUpdatedTime=mfp_time(registration.updated_at if registration is not None else player.last_active),
        platform=platform_of(player),
        token=player.identifier or "",
    )
    if registration is not None and registration.phone_number:
        item["phoneNumber"] = registration.phone_number
    if registration is not None and registration.user_agent:
        item["userAgent"] = registration.user_agent
    return item


class DeviceWriteMixin:
    def default_user_id(self) -> str:
        """The credential's subject (§1.4): the confidential client id of the token."""
        client = getattr(self, "client", None)
        return client.client_id if client is not None else "anonymous"

    def user_agent(self) -> str:
        return self.request.META.get("HTTP_USER_AGENT", "")


class DeviceCollectionView(DeviceWriteMixin, MfpAppView):
    requirements = {"GET": DEVICES_LIST, "POST": DEVICES_WRITE}

    def get(self, request, *args, **kwargs):
        expand = query_flag(request, "expand", "expend")
        devices = with_player_id_text(mfp_devices(app=self.app)).filter(
            parse_filters(request, DEVICE_FILTERS)
        )
        user_id = query_value(request, "userId")
        if user_id is not None:
            devices = devices.filter(external_user_id=user_id)
        return Response(
            page(request, devices, "devices", lambda player: device_json(self, player, full=expand))
        )

    def post(self, request, *args, **kwargs):
        player, created = device_register(
            mfp_application=self.mfp_application,
            body=self.body_object(),
            default_user_id=self.default_user_id(),
            user_agent=self.user_agent(),
        )
        body = device_json(self, player)
        if not created:
            return Response(body)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["href"]})


class DeviceDetailView(DeviceWriteMixin, MfpAppView):
    requirements = {"GET": DEVICES_READ, "PUT": DEVICES_WRITE, "DELETE": DEVICES_WRITE}

    def get(self, request, *args, **kwargs):
        player = mfp_device_or_404(app=self.app, device_id=kwargs["device_id"])
        return Response(device_json(self, player))

    def put(self, request, *args, **kwargs):
        player = device_update(
            mfp_application=self.mfp_application,
            device_id=kwargs["device_id"],
            body=self.body_object(),
            default_user_id=self.default_user_id(),
            user_agent=self.user_agent(),
        )
        return Response(device_json(self, player))

    def delete(self, request, *args, **kwargs):
        device_delete(mfp_application=self.mfp_application, device_id=kwargs["device_id"])
        return Response(status=status.HTTP_204_NO_CONTENT)
