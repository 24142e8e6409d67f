"""Dashboard compose/send, audience estimate, live progress and the detail page's actions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.models import Membership
from notifications.models import Notification, PlatformStats
from players.models import DeviceType
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def _staff(tenant, username: str, role: str):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["notifications", "apps"])
    )
    Membership.objects.create(organization=tenant.organization, user=user, role=role)
    return user


@pytest.fixture
def admin_browser(client, own):
    client.force_login(_staff(own, "sender", Membership.Role.ADMIN))
    return client


@pytest.fixture
def viewer_browser(client, own):
    client.force_login(_staff(own, "looker", Membership.Role.VIEWER))
    return client


@pytest.fixture
def audience(own):
    PlayerFactory.create_batch(3, app=own.app, device_type=DeviceType.ANDROID)
    PlayerFactory(app=own.app, device_type=DeviceType.ANDROID, notification_types=-2)  # unsubscribed
    return PlayerFactory(app=own.app, device_type=DeviceType.ANDROID, test_type=1)


def _form(app, **fields):
    return {"app": str(app.pk), "audience": "segments", "included_segments": ["Subscribed Users"], **fields}


def test_compose_sends_through_the_api_service(admin_browser, own, audience):
    response = admin_browser.post(
        "/admin/notifications/notification/compose/",
        _form(
            own.app, contents='{"en": "Hello", "es": "Hola"}', headings="Hi", data='{"k": 1}', _send="Send"
        ),
    )
    notification = Notification.objects.get(app=own.app)
    assert response.status_code == 302 and str(notification.pk) in response["Location"]
    assert notification.kind == Notification.Kind.DASHBOARD and notification.recipients == 4
    assert notification.request["contents"] == {"en": "Hello", "es": "Hola"}
    assert notification.request["headings"] == {"en": "Hi"} and notification.request["data"] == {"k": 1}


def test_send_to_test_players_reaches_only_them(admin_browser, own, audience):
    admin_browser.post(
        "/admin/notifications/notification/compose/", _form(own.app, contents="Preview", _send_test="Send")
    )
    notification = Notification.objects.get(app=own.app)
    assert notification.recipients == 1
    assert notification.request["include_player_ids"] == [str(audience.pk)]


def test_invalid_input_shows_the_apis_error_and_sends_nothing(admin_browser, own, audience):
    response = admin_browser.post("/admin/notifications/notification/compose/", _form(own.app, _send="Send"))
    assert response.status_code == 200 and "contents" in response.content.decode().lower()
    response = admin_browser.post(
        "/admin/notifications/notification/compose/", _form(own.app, contents="x", data="{nope", _send="Send")
    )
    assert response.status_code == 200 and "Invalid JSON" in response.content.decode()
    assert not Notification.objects.exists()


def test_audience_estimate_counts_like_the_api(admin_browser, own, audience):
    url = "/admin/notifications/notification/compose/estimate/"
    assert admin_browser.post(url, _form(own.app, contents="x")).json() == {"recipients": 4}
    filtered = admin_browser.post(
        url,
        {
            "app": str(own.app.pk),
            "audience": "filters",
            "contents": "x",
            "filters": '[{"field": "session_count", "relation": ">", "value": "100"}]',
        },
    ).json()
    assert filtered == {"recipients": 0}
    bad = admin_browser.post(
        url, {"app": str(own.app.pk), "audience": "filters", "contents": "x", "filters": "[1]"}
    )
    assert "error" in bad.json()


def test_another_tenants_app_cannot_be_chosen(admin_browser, outsider):
    response = admin_browser.post(
        "/admin/notifications/notification/compose/", _form(outsider.app, contents="x", _send="Send")
    )
    assert response.status_code == 200 and not Notification.objects.exists()


def test_viewer_cannot_send_or_cancel(viewer_browser, own, audience):
    assert viewer_browser.get("/admin/notifications/notification/compose/").status_code == 403
    notification = Notification.objects.create(
        app=own.app, request={}, send_after=timezone.now() + timedelta(hours=1), status="scheduled"
    )
    assert (
        viewer_browser.post(f"/admin/notifications/notification/{notification.pk}/cancel/").status_code == 403
    )
    page = viewer_browser.get(f"/admin/notifications/notification/{notification.pk}/change/").content.decode()
    assert "herald-progress-panel" in page and 'value="Cancel"' not in page


def test_progress_cancel_and_duplicate(admin_browser, own, outsider):
    notification = Notification.objects.create(
        app=own.app,
        request={
            "contents": {"en": "Again"},
            "included_segments": ["Subscribed Users"],
            "isIos": True,
            "data": {"promo": 7},
            "ios_attachments": {"id1": "https://example.com/a.png"},
            "throttle_rate_per_minute": 60,
        },
        name="promo",
        send_after=timezone.now() + timedelta(hours=1),
        status="scheduled",
        recipients=10,
        successful=3,
        failed=1,
        remaining=6,
    )
    base = f"/admin/notifications/notification/{notification.pk}"
    PlatformStats.objects.create(notification=notification, platform="android", successful=3, failed=1)
    progress = admin_browser.get(f"{base}/progress/").json()
    assert (progress["done"], progress["remaining"], progress["completed"]) == (4, 6, False)
    assert progress["platforms"] == {"android": {"successful": 3, "failed": 1, "errored": 0, "converted": 0}}
    page = admin_browser.get(f"{base}/change/").content.decode()
    assert 'value="Cancel"' in page and 'value="Duplicate"' in page

    admin_browser.post(f"{base}/cancel/")
    notification.refresh_from_db()
    assert notification.status == "canceled" and admin_browser.get(f"{base}/progress/").json()["completed"]

    response = admin_browser.post(f"{base}/duplicate/", follow=True)
    html = response.content.decode()
    assert "Copy of promo" in html and "Again" in html
    form = response.context["form"]
    assert form.initial["platforms"] == ["isIos"] and form.initial["throttle_rate_per_minute"] == 60
    assert form.initial["ios_attachment"] == "https://example.com/a.png"
    assert json.loads(form.initial["data"]) == {"promo": 7}

    foreign = Notification.objects.create(app=outsider.app, request={}, send_after=timezone.now())
    assert admin_browser.get(f"/admin/notifications/notification/{foreign.pk}/progress/").status_code == 404
    assert admin_browser.post(f"/admin/notifications/notification/{foreign.pk}/cancel/").status_code == 404


def test_detail_page_shows_conversions_and_outcomes(admin_browser, own, audience):
    from notifications.models import OutcomeEvent

    notification = Notification.objects.create(
        app=own.app, request={}, send_after=timezone.now(), successful=10, converted=4
    )
    other = Notification.objects.create(app=own.app, request={}, send_after=timezone.now())
    for weight, ids in (
        (2.5, [str(notification.pk)]),
        (1, [str(notification.pk), str(other.pk)]),
        (9, [str(other.pk)]),
    ):
        OutcomeEvent.objects.create(
            app=own.app,
            name="purchase",
            weight=weight,
            device_type=1,
            attribution="direct",
            notification_ids=ids,
        )
    page = admin_browser.get(f"/admin/notifications/notification/{notification.pk}/change/").content.decode()
    assert "4 clicked of 10 delivered" in page
    row = page.split('id="herald-outcomes"', 1)[1].split("</table>", 1)[0]
    assert "<td>purchase</td><td>direct</td><td>2</td><td>3.50</td>" in row


def test_compose_offers_the_segment_filter_builder(admin_browser, own):
    page = admin_browser.get("/admin/notifications/notification/compose/").content.decode()
    assert 'id="herald-builder"' in page and "segments/filter_builder.js" in page
    assert '"session_count"' in page.split('id="herald-relations"', 1)[1].split("</script>", 1)[0]
    assert admin_browser.get("/static/segments/filter_builder.js").status_code == 200
