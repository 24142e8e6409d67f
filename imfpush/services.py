"""Writes for MobileFirst applications (§3.1). Devices, tags, messages: see their own modules."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.models import App, Organization
from apps.services import app_create
from imfpush.errors import MfpError
from imfpush.models import APPLICATION_ID_PATTERN, PUSH_ALL, MfpApplication, Tag


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MfpError.invalid(name, "must be true or false")


def check_application_id(value) -> str:
    if not isinstance(value, str) or not APPLICATION_ID_PATTERN.fullmatch(value):
        raise MfpError.invalid(
            "applicationId", "1 to 255 of A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return value


def mfp_application_create(*, organization: Organization, body: dict) -> MfpApplication:
    """A new App in the organization, named after ``applicationId``, with ``Push.all``."""
    application_id = check_application_id(body.get("applicationId"))
    enabled = _bool(body.get("enabled", True), "enabled")
    if MfpApplication.objects.filter(organization=organization, application_id=application_id).exists():
        raise MfpError.conflict("application", application_id)
    try:
        with transaction.atomic():
            app, _key = app_create(organization=organization, data={"name": application_id})
            record = MfpApplication.objects.create(
                app=app, organization=organization, application_id=application_id, enabled=enabled
            )
            Tag.objects.create(app=app, name=PUSH_ALL)
    except IntegrityError as exc:  # a concurrent create of the same id
        raise MfpError.conflict("application", application_id) from exc
    return record


def mfp_application_set_enabled(*, record: MfpApplication, body: dict) -> MfpApplication:
    if "enabled" not in body:
        raise MfpError.invalid("enabled", "is required")
    record.enabled = _bool(body["enabled"], "enabled")
    record.save(update_fields=["enabled"])
    return record


def mfp_application_delete(*, record: MfpApplication) -> None:
    """Deleting the App cascades to its players, tags, subscriptions, messages and settings."""
    record.app.delete()


@transaction.atomic
def mfp_application_assign(*, app: App, application_id: str, enabled: bool = True) -> MfpApplication:
    """Give an existing App a MobileFirst applicationId (the dashboard and the demo do this).

    An App that already has one keeps it and only ``enabled`` changes: the id names the App in
    tokens' ``push.application.<id>`` scopes, so it never changes. A different App of the
    organization holding the id is a conflict.
    """
    application_id = check_application_id(application_id)
    record = MfpApplication.objects.select_for_update().filter(app=app).first()
    if record is None:
        taken = MfpApplication.objects.filter(
            organization_id=app.organization_id, application_id=application_id
        ).exists()
        if taken:
            raise MfpError.conflict("application", application_id)
        record = MfpApplication.objects.create(
            app=app, organization_id=app.organization_id, application_id=application_id, enabled=enabled
        )
    elif record.enabled != enabled:
        record.enabled = enabled
        record.save(update_fields=["enabled"])
    Tag.objects.get_or_create(app=app, name=PUSH_ALL)
    return record
