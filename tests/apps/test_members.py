"""Adding organization members from the dashboard, and who may grant which role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.members import DASHBOARD_APP_LABELS, member_create
from apps.models import Membership
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-pass-phrase-9"


def _logged_in(username: str) -> Client:
    """Through the login form, as a person would (django-axes watches it)."""
    client = Client()
    response = client.post("/admin/login/", {"username": username, "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/", response.status_code
    return client


def _member(organization, username: str, role: str) -> Client:
    email = f"{username}@example.com"
    member_create(organization=organization, username=username, email=email, password=PASSWORD, role=role)
    return _logged_in(username)


def _new_member(username: str, role: str) -> dict:
    return {
        "username": username,
        "email": f"{username}@example.com",
        "role": role,
        "password1": PASSWORD,
        "password2": PASSWORD,
    }


@pytest.fixture
def org():
    return OrganizationFactory(name="Acme")


def _add_url(organization) -> str:
    return reverse("admin:apps_organization_add_member", args=[organization.pk])


def test_an_owner_adds_a_member_who_can_log_in_and_sees_only_the_organization(org):
    owner = _member(org, "olga", Membership.Role.OWNER)
    page = owner.get(reverse("admin:apps_organization_change", args=[org.pk])).content.decode()
    assert _add_url(org) in page

    response = owner.post(_add_url(org), _new_member("amir", Membership.Role.ADMIN))

    assert response.status_code == 302
    user = get_user_model().objects.get(username="amir")
    assert user.is_staff and not user.is_superuser and user.check_password(PASSWORD)
    assert Membership.objects.get(user=user).organization == org
    assert Membership.objects.get(user=user).role == Membership.Role.ADMIN
    granted = {p.content_type.app_label for p in user.user_permissions.select_related("content_type")}
    assert granted == set(DASHBOARD_APP_LABELS)
    other = OrganizationFactory(name="Other org")
    amir = _logged_in("amir")
    listing = amir.get(reverse("admin:apps_organization_changelist")).content.decode()
    assert "Acme" in listing and "Other org" not in listing
    assert amir.get(reverse("admin:apps_organization_change", args=[other.pk])).status_code in (302, 404)


def test_an_admin_adds_admins_and_viewers_but_never_an_owner(org):
    admin = _member(org, "ada", Membership.Role.ADMIN)

    refused = admin.post(_add_url(org), _new_member("otto", Membership.Role.OWNER))
    added = admin.post(_add_url(org), _new_member("vera", Membership.Role.VIEWER))

    assert refused.status_code == 200 and "role" in refused.context["form"].errors
    assert not get_user_model().objects.filter(username="otto").exists()
    assert added.status_code == 302
    assert Membership.objects.get(user__username="vera").role == Membership.Role.VIEWER


def test_a_viewer_may_not_add_members(org):
    viewer = _member(org, "vic", Membership.Role.VIEWER)

    assert viewer.get(_add_url(org)).status_code == 403
    assert viewer.post(_add_url(org), _new_member("sneaky", Membership.Role.VIEWER)).status_code == 403
    assert not get_user_model().objects.filter(username="sneaky").exists()


def test_an_outsider_cannot_reach_another_organizations_page(org):
    outsider = _member(OrganizationFactory(name="Elsewhere"), "oscar", Membership.Role.OWNER)

    assert outsider.get(_add_url(org)).status_code == 404
    assert outsider.post(_add_url(org), _new_member("mole", Membership.Role.OWNER)).status_code == 404
    assert not get_user_model().objects.filter(username="mole").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": "OLGA"}, "username"),  # taken, whatever the case
        ({"username": "has space"}, "username"),
        ({"password1": "short", "password2": "short"}, "password1"),
        ({"password2": "something else 123"}, "password2"),
        ({"email": "not-an-email"}, "email"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(org, overrides, field):
    owner = _member(org, "olga", Membership.Role.OWNER)
    users = get_user_model().objects.count()

    response = owner.post(_add_url(org), {**_new_member("newbie", Membership.Role.VIEWER), **overrides})

    assert response.status_code == 200 and field in response.context["form"].errors
    assert get_user_model().objects.count() == users


def test_only_owners_change_roles_in_the_members_list(org):
    owner = _member(org, "olga", Membership.Role.OWNER)
    admin = _member(org, "ada", Membership.Role.ADMIN)
    url = reverse("admin:apps_organization_change", args=[org.pk])

    admin_form = admin.get(url).context["adminform"]
    owner_form = owner.get(url).context["adminform"]
    admin_inline = admin.get(url).context["inline_admin_formsets"][0]
    owner_inline = owner.get(url).context["inline_admin_formsets"][0]

    assert admin_form is not None and owner_form is not None
    assert "role" in admin_inline.readonly_fields and "user" in admin_inline.readonly_fields
    assert "role" not in owner_inline.readonly_fields and "user" in owner_inline.readonly_fields
