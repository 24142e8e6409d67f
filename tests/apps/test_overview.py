"""The dashboard's app overview page: figures from real rows, SVG chart, tenant scoping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.charts import _nice_ceiling
from apps.models import Membership
from apps.overview import app_overview
from notifications.models import Notification
from players.models import DeviceType
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def _notification(app, *, days_ago: int, successful=0, failed=0, errored=0, converted=0):
    moment = timezone.now() - timedelta(days=days_ago)
    return Notification.objects.create(
        app=app,
        request={},
        send_after=moment,
        queued_at=moment,
        successful=successful,
        failed=failed,
        errored=errored,
        converted=converted,
    )


@pytest.fixture
def populated(own):
    now = timezone.now()
    PlayerFactory.create_batch(3, app=own.app, device_type=DeviceType.ANDROID, last_active=now)
    PlayerFactory(
        app=own.app, device_type=DeviceType.IOS, identifier="a" * 64, last_active=now - timedelta(days=3)
    )
    PlayerFactory(
        app=own.app, device_type=DeviceType.IOS, identifier="b" * 64, last_active=now - timedelta(days=20)
    )
    PlayerFactory(
        app=own.app,
        notification_types=-2,
        invalid_identifier=True,
        unsubscribed_reason="UNREGISTERED",
        last_active=now - timedelta(days=40),
    )
    PlayerFactory(
        app=own.app,
        notification_types=-2,
        unsubscribed_reason="unsubscribed",
        last_active=now - timedelta(days=40),
    )
    _notification(own.app, days_ago=0, successful=8, failed=1, errored=1, converted=2)
    _notification(own.app, days_ago=2, successful=2, converted=1)
    _notification(own.app, days_ago=45, successful=100, converted=100)  # outside the 30 days
    return own


def test_overview_figures_come_from_the_apps_rows(populated, outsider):
    PlayerFactory.create_batch(2, app=outsider.app)  # another tenant's players never count
    _notification(outsider.app, days_ago=0, successful=50)
    overview = app_overview(populated.app)
    assert dict(overview.subscribed_by_platform) == {"Android": 3, "iOS": 2}
    assert overview.active_users == [(1, 3), (7, 4), (30, 5)]
    assert overview.delivered_30d == 10 and overview.clicked_30d == 3
    assert overview.click_through_rate == pytest.approx(0.3)
    assert dict(overview.unsubscribes_by_reason) == {"UNREGISTERED": 1, "unsubscribed": 1}
    assert len(overview.days) == 30
    today = overview.days[-1]
    assert (today.successful, today.failed, today.errored) == (8, 1, 1)
    assert overview.days[-3].successful == 2 and sum(d.total for d in overview.days[:-3]) == 0


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (260, 500)])
def test_chart_axis_rounds_up_to_a_readable_value(value, ceiling):
    assert _nice_ceiling(value) == ceiling


@pytest.fixture
def viewer(own):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_app"))
    Membership.objects.create(organization=own.organization, user=user, role=Membership.Role.VIEWER)
    return user


def test_overview_page_renders_the_chart_offline(client, viewer, populated):
    client.force_login(viewer)
    response = client.get(f"/admin/apps/app/{populated.app.pk}/overview/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and 'aria-label="Deliveries per day over the last 30 days"' in html
    assert html.count("<rect") >= 3 + 3  # legend swatches + today's three stacked bars
    assert "30.0%" in html and "UNREGISTERED" in html
    assert "http://" not in html.split("<svg", 1)[1].split("</svg>", 1)[0].replace("http://www.w3.org", "")
    assert "cdn" not in html.lower()


def test_overview_of_another_tenants_app_is_not_found(client, viewer, outsider):
    client.force_login(viewer)
    assert client.get(f"/admin/apps/app/{outsider.app.pk}/overview/").status_code == 404


def test_viewer_sees_no_keys(client, viewer, own):
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_appkey", "view_userkey", "add_appkey"])
    )
    client.force_login(viewer)
    listing = client.get("/admin/apps/appkey/")
    assert listing.status_code == 200 and listing.context["cl"].result_count == 0
    assert own.app_key[:12] not in listing.content.decode()
    assert client.get("/admin/apps/appkey/add/").status_code == 403
    app_page = client.get(f"/admin/apps/app/{own.app.pk}/change/").content.decode()
    assert own.app.name in app_page and "appkey" in app_page  # the sidebar still links the (empty) list
    assert 'id="keys-group"' not in app_page and "appkey_set" not in app_page


def test_owner_sees_the_key_inline(client, own):
    owner = get_user_model().objects.create_user("owner", password="pw", is_staff=True)
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["view_app", "view_appkey"]))
    Membership.objects.create(organization=own.organization, user=owner, role=Membership.Role.OWNER)
    client.force_login(owner)
    assert 'id="keys-group"' in client.get(f"/admin/apps/app/{own.app.pk}/change/").content.decode()


def test_apns_certificate_expiry_is_flagged_in_the_dashboard(client, own):
    from apps.credentials import certificate_status

    now = timezone.now()
    assert certificate_status(None) is None
    assert certificate_status(now + timedelta(days=200)).warn is False
    soon = certificate_status(now + timedelta(days=10, hours=1))
    assert soon.warn and soon.text.startswith("expires in 10 days")
    assert certificate_status(now - timedelta(days=1)).text.startswith("expired on")

    own.app.apns_certificate_expires_at = now + timedelta(days=5)
    own.app.save(update_fields=["apns_certificate_expires_at"])
    owner = get_user_model().objects.create_user("cert-owner", password="pw", is_staff=True)
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["view_app", "change_app"]))
    Membership.objects.create(organization=own.organization, user=owner, role=Membership.Role.OWNER)
    client.force_login(owner)
    page = client.get(f"/admin/apps/app/{own.app.pk}/change/").content.decode()
    assert "APNs certificate: expires in" in page and "renew it" in page
    listing = client.get("/admin/apps/app/").content.decode()
    assert "renew it" in listing
