"""Writes for MFP tags (mobilefirst-push-api.md §3.5).

A tag belongs to one App; its name is case-sensitive, unique in the App and immutable.
``Push.all`` is reserved: every App has it, it cannot be created (409) or deleted (400).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.models import App
from imfpush.device_selectors import mfp_tag_or_404
from imfpush.errors import MfpError
from imfpush.message_coercion import TOO_LONG_TEXT
from imfpush.models import PUSH_ALL, Tag

BAD_TAG_NAME = _("must be 1 to 255 characters without /")
NOT_A_STRING = _("must be a string")
NAME_IMMUTABLE = _("the tag name cannot be changed")
PUSH_ALL_RESERVED = _("The tag Push.all is reserved: it cannot be deleted.")


def check_tag_name(value, name: str = "name") -> str:
    """1-255 characters; no ``/``, so that every tag can be addressed by its path."""
    if not isinstance(value, str) or not (1 <= len(value) <= 255) or "/" in value:
        raise MfpError.invalid(name, BAD_TAG_NAME)
    return value


MAX_DESCRIPTION_LENGTH = 1024


def _description(body: dict) -> str | None:
    value = body.get("description")
    if value is not None and not isinstance(value, str):
        raise MfpError.invalid("description", NOT_A_STRING)
    if value is not None and len(value) > MAX_DESCRIPTION_LENGTH:
        raise MfpError.invalid("description", TOO_LONG_TEXT % {"limit": MAX_DESCRIPTION_LENGTH})
    return value


def tag_create(*, app: App, body: dict) -> Tag:
    name = check_tag_name(body.get("name"))
    description = _description(body) or ""
    if name == PUSH_ALL or Tag.objects.filter(app=app, name=name).exists():
        raise MfpError.conflict("tag", name)
    try:
        with transaction.atomic():
            return Tag.objects.create(app=app, name=name, description=description)
    except IntegrityError as exc:  # a concurrent create of the same name
        raise MfpError.conflict("tag", name) from exc


@transaction.atomic
def tag_update(*, app: App, name: str, body: dict) -> Tag:
    """PUT tags/{tagName}: the description changes; a differing body ``name`` is a ``400``."""
    if "name" in body and body["name"] is not None and body["name"] != name:
        raise MfpError.invalid("name", NAME_IMMUTABLE)
    description = _description(body)
    tag = mfp_tag_or_404(app=app, name=name)
    if description is not None:
        tag.description = description
    tag.updated_at = timezone.now()
    tag.save(update_fields=["description", "updated_at"])
    return tag


@transaction.atomic
def tag_delete(*, app: App, name: str) -> None:
    """DELETE tags/{tagName}: the tag and its subscriptions (``Push.all`` answers ``400``)."""
    tag = mfp_tag_or_404(app=app, name=name)
    if tag.name == PUSH_ALL:
        raise MfpError(400, "FPWSE0005E", PUSH_ALL_RESERVED)
    tag.delete()
