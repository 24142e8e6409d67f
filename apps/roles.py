"""Dashboard roles: owners and admins act on an organization's apps; viewers only look."""

from __future__ import annotations

from apps.models import Membership, Organization

ACTING_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def can_act(user, organization: Organization) -> bool:
    """Whether ``user`` may send, cancel or see keys in ``organization`` (superusers always may)."""
    if user.is_superuser:
        return True
    return Membership.objects.filter(organization=organization, user=user, role__in=ACTING_ROLES).exists()


def acting_apps(user):
    """The apps ``user`` may send to: every app for a superuser, else their owner/admin orgs' apps."""
    from apps.models import App

    if user.is_superuser:
        return App.objects.all()
    return App.objects.filter(
        organization__memberships__user=user, organization__memberships__role__in=ACTING_ROLES
    ).distinct()
