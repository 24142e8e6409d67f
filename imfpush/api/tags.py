"""``/apps/{applicationId}/tags``: list, create, read, update and delete tags (§3.5)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response

from imfpush.api.base import MfpAppView, MfpView
from imfpush.api.devices import mfp_time
from imfpush.api.listing import FilterField, page, parse_filters, query_flag, text_field
from imfpush.device_selectors import mfp_tag_or_404, mfp_tags, tags_on_platform
from imfpush.models import Tag
from imfpush.scopes import Requirement
from imfpush.tags import tag_create, tag_delete, tag_update

TAGS_LIST = Requirement("tags.read", aliases=("devices.write",), mobile_client=True)
TAGS_READ = Requirement("tags.read")
TAGS_WRITE = Requirement("tags.write")

TAG_FILTERS = {
    "name": text_field("name"),
    "description": text_field("description"),
    "platform": FilterField(("==",), lambda operator, value: tags_on_platform(value)),
}


def tag_json(view: MfpView, tag: Tag, *, full: bool = True) -> dict:
    """The tag; abbreviated (``href``, ``name``) unless ``full``; plus a counted ``subscriptionCount``."""
    item = {"href": view.href("apps", view.application_id, "tags", tag.name), "name": tag.name}
    if full:
        item.update(
            createdMode=tag.created_mode,
            createdTime=mfp_time(tag.created_at),
            description=tag.description,
            lastUpdatedTime=mfp_time(tag.updated_at),
        )
    count = getattr(tag, "subscription_count", None)
    if count is not None:
        item["subscriptionCount"] = count
    return item


class TagCollectionView(MfpAppView):
    requirements = {"GET": TAGS_LIST, "POST": TAGS_WRITE}

    def get(self, request, *args, **kwargs):
        expand = query_flag(request, "expand", "expend")
        counted = query_flag(request, "subscriptionCount")  # "10" in the docs' example means yes (§3.5)
        tags = mfp_tags(app=self.app, subscription_count=counted).filter(parse_filters(request, TAG_FILTERS))
        return Response(page(request, tags, "tags", lambda tag: tag_json(self, tag, full=expand)))

    def post(self, request, *args, **kwargs):
        tag = tag_create(app=self.app, body=self.body_object())
        body = tag_json(self, tag)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["href"]})


class TagDetailView(MfpAppView):
    requirements = {"GET": TAGS_READ, "PUT": TAGS_WRITE, "DELETE": TAGS_WRITE}

    def get(self, request, *args, **kwargs):
        return Response(tag_json(self, mfp_tag_or_404(app=self.app, name=kwargs["tag_name"])))

    def put(self, request, *args, **kwargs):
        tag = tag_update(app=self.app, name=kwargs["tag_name"], body=self.body_object())
        return Response(tag_json(self, tag))

    def delete(self, request, *args, **kwargs):
        tag_delete(app=self.app, name=kwargs["tag_name"])
        return Response(status=status.HTTP_204_NO_CONTENT)
