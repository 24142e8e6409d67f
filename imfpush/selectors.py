"""Reads of the MobileFirst surface, always inside the caller's organization."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.models import App, Organization
from core.api.base import parse_uuid
from imfpush.errors import APP_NOT_FOUND, MfpError
from imfpush.models import PUSH_ALL, MfpApplication, Tag


def mfp_application_or_404(organization: Organization, application_id: str) -> MfpApplication:
    """The application by its MobileFirst id, or an App of the organization by its UUID (§1.4).

    An App created through the OneSignal API gets its MobileFirst record (and ``Push.all``)
    the first time it is addressed here.
    """
    found = (
        MfpApplication.objects.select_related("app")
        .filter(organization=organization, application_id=application_id)
        .first()
    )
    if found is not None:
        return found
    app_uuid = parse_uuid(application_id)
    app = App.objects.filter(organization=organization, pk=app_uuid).first() if app_uuid else None
    if app is None or MfpApplication.objects.filter(app=app).exists():
        raise MfpError.not_found(APP_NOT_FOUND)
    try:
        with transaction.atomic():
            record = MfpApplication.objects.create(
                app=app, organization=organization, application_id=application_id
            )
            Tag.objects.get_or_create(app=app, name=PUSH_ALL)
    except IntegrityError:
        record = MfpApplication.objects.select_related("app").get(app=app)
    return record
