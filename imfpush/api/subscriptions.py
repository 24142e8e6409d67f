"""``/apps/{applicationId}/subscriptions``: devices subscribed to tags (§3.4)."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.response import Response

from imfpush.api.base import MfpAppView, MfpView
from imfpush.api.devices import mfp_time
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
    device_id_condition,
    device_id_of,
    mfp_subscription_or_404,
    mfp_subscriptions,
    platform_of,
    with_player_id_text,
)
from imfpush.errors import MfpError
from imfpush.models import Subscription
from imfpush.scopes import Requirement
from imfpush.subscriptions import (
    BatchResult,
    subscription_create,
    subscription_delete,
    subscription_delete_by_tag,
    subscriptions_batch,
)

SUBSCRIPTIONS_READ = Requirement("subscriptions.read", mobile_client=True)  # mobile: only with deviceId=
SUBSCRIPTIONS_READ_ALL = Requirement("subscriptions.read")
SUBSCRIPTIONS_WRITE = Requirement("subscriptions.write", mobile_client=True)
SUBSCRIPTION_READ = Requirement("subscriptions.read", aliases=("devices.write",))
SUBSCRIPTION_WRITE = Requirement("subscriptions.write", aliases=("devices.write",))

TAGS_NOT_FOUND = _("Not Found - Targeted resource 'tagNames' does not exist. Check the 'tags' parameter")
BAD_ACTION = _("must be delete")


def _device_id_condition(operator: str, value: str) -> Q:
    return device_id_condition(operator, value, prefix="player__")


SUBSCRIPTION_FILTERS = {
    "tagName": text_field("tag__name"),
    "deviceId": FilterField(OPERATORS, _device_id_condition),
    "userId": text_field("player__external_user_id"),
}


def subscription_json(view: MfpView, subscription: Subscription, *, full: bool = True) -> dict:
    """Abbreviated: ``deviceId``, ``href``, ``subscriptionId``, ``tagName``, ``userId`` (§1.6)."""
    player = subscription.player
    subscription_id = str(subscription.pk)
    item = {
        "deviceId": device_id_of(player),
        "href": view.href("apps", view.application_id, "subscriptions", subscription_id),
        "subscriptionId": subscription_id,
        "tagName": subscription.tag.name,
        "userId": player.external_user_id or "",
    }
    if full:
        item.update(
            createdMode=subscription.created_mode,
            createdTime=mfp_time(subscription.created_at),
            platform=platform_of(player),
            token=player.identifier or "",
        )
    return item


class SubscriptionCollectionView(MfpAppView):
    requirements = {"GET": SUBSCRIPTIONS_READ, "POST": SUBSCRIPTIONS_WRITE, "DELETE": SUBSCRIPTIONS_WRITE}

    def before_scope_check(self) -> None:
        # push.mobileclient may read only one device's subscriptions (§2.7).
        if self.request.method == "GET" and query_value(self.request, "deviceId") is None:
            self.check_scope(SUBSCRIPTIONS_READ_ALL, self.scope_application_id())

    def get(self, request, *args, **kwargs):
        expand = query_flag(request, "expand", "expend")
        subscriptions = with_player_id_text(mfp_subscriptions(app=self.app), prefix="player__").filter(
            parse_filters(request, SUBSCRIPTION_FILTERS)
        )
        # The shortcut parameters are exact matches, ANDed with every filter (§5).
        shortcuts = {
            "deviceId": lambda value: _device_id_condition("==", value),
            "tagName": lambda value: Q(tag__name=value),
            "userId": lambda value: Q(player__external_user_id=value),
        }
        for name, condition in shortcuts.items():
            value = query_value(request, name)
            if value is not None:
                subscriptions = subscriptions.filter(condition(value))
        return Response(
            page(
                request, subscriptions, "subscriptions", lambda row: subscription_json(self, row, full=expand)
            )
        )

    def post(self, request, *args, **kwargs):
        body = self.body_object()
        action = query_value(request, "action")
        if action is not None and action.lower() != "delete":
            raise MfpError.invalid("action", BAD_ACTION)
        if action is not None:
            result = subscriptions_batch(mfp_application=self.mfp_application, body=body, unsubscribe=True)
            return self._batch_response(result, unsubscribe=True)
        if "tagNames" in body:
            result = subscriptions_batch(mfp_application=self.mfp_application, body=body, unsubscribe=False)
            return self._batch_response(result, unsubscribe=False)
        subscription, created = subscription_create(mfp_application=self.mfp_application, body=body)
        item = subscription_json(self, subscription)
        if not created:
            return Response(item)
        return Response(item, status=status.HTTP_201_CREATED, headers={"Location": item["href"]})

    def delete(self, request, *args, **kwargs):
        subscription_delete_by_tag(
            mfp_application=self.mfp_application,
            device_id=query_value(request, "deviceId"),
            tag_name=query_value(request, "tagName"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _batch_response(self, result: BatchResult, *, unsubscribe: bool) -> Response:
        """The IBM Cloud batch forms (§3.4): ``207`` with one list per outcome."""
        not_found = {"code": "FPWSE0001E", "message": str(TAGS_NOT_FOUND), "tags": result.tags_not_found}
        done = [subscription_json(self, subscription) for subscription in result.done]
        if unsubscribe:
            device_id = self.body_object()["deviceId"]
            body = {
                "subscriptionNotExists": [
                    {"deviceId": device_id, "tagName": name} for name in result.unchanged
                ],
                "tagsNotFound": not_found,
                "unsubscribed": done,
            }
        else:
            body = {
                "subscribed": done,
                "subscriptionExists": [subscription_json(self, row) for row in result.unchanged],
                "tagsNotFound": not_found,
            }
        return Response(body, status=status.HTTP_207_MULTI_STATUS)


class SubscriptionDetailView(MfpAppView):
    requirements = {"GET": SUBSCRIPTION_READ, "DELETE": SUBSCRIPTION_WRITE}

    def get(self, request, *args, **kwargs):
        subscription = mfp_subscription_or_404(app=self.app, subscription_id=kwargs["subscription_id"])
        return Response(subscription_json(self, subscription))

    def delete(self, request, *args, **kwargs):
        subscription_delete(mfp_application=self.mfp_application, subscription_id=kwargs["subscription_id"])
        return Response(status=status.HTTP_204_NO_CONTENT)
