"""Organization members: the dashboard's staff accounts, added by their organization's owners and
admins without ever seeing another tenant's users."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Permission
from django.db import transaction

from apps.models import Membership, Organization

# The model permissions every tenant staff account holds; what each may do within them is decided
# by its role per organization (apps/roles.py) and by the admin's tenant scoping.
DASHBOARD_APP_LABELS = ("apps", "players", "segments", "notifications", "imfpush", "webhooks")


def grant_dashboard_permissions(user: AbstractUser) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=DASHBOARD_APP_LABELS))


def roles_grantable_by(user: AbstractUser, organization: Organization) -> list[str]:
    """Owners (and superusers) grant any role; admins grant admin or viewer; viewers none."""
    if user.is_superuser:
        return list(Membership.Role.values)
    membership = Membership.objects.filter(organization=organization, user=user)
    role = membership.values_list("role", flat=True).first()
    if role == Membership.Role.OWNER:
        return list(Membership.Role.values)
    if role == Membership.Role.ADMIN:
        return [Membership.Role.ADMIN, Membership.Role.VIEWER]
    return []


@transaction.atomic
def member_create(
    *, organization: Organization, username: str, email: str, password: str, role: str
) -> Membership:
    """A new staff account in ``organization`` (the dashboard's only way for tenant staff to add
    one: picking an existing account would mean listing every tenant's users)."""
    user = get_user_model().objects.create_user(
        username=username, email=email, password=password, is_staff=True
    )
    grant_dashboard_permissions(user)
    return Membership.objects.create(organization=organization, user=user, role=role)
