"""The dashboard's player page: what the player received, test send, GDPR delete, CSV export."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.models import Membership
from notifications.models import Delivery, DeliveryBatch, Notification
from players.models import CsvExport, Player
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


def _login(client, tenant, role):
    user = get_user_model().objects.create_user(f"u-{role}", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["players", "notifications"])
    )
    Membership.objects.create(organization=tenant.organization, user=user, role=role)
    client.force_login(user)
    return client


@pytest.fixture
def player(own):
    player = PlayerFactory(app=own.app, tags={"level": "7"}, session_count=4, unsubscribed_reason="")
    notification = Notification.objects.create(
        app=own.app, request={}, name="Spring sale", send_after=timezone.now()
    )
    batch = DeliveryBatch.objects.create(
        notification=notification, device_type=player.device_type, size=1, available_at=timezone.now()
    )
    Delivery.objects.create(
        notification=notification,
        batch=batch,
        player=player,
        status=Delivery.Status.SENT,
        sent_at=timezone.now(),
        opened_at=timezone.now(),
    )
    return player


def test_player_page_shows_tags_sessions_and_received_notifications(client, own, player):
    browser = _login(client, own, Membership.Role.VIEWER)
    page = browser.get(f"/admin/players/player/{player.pk}/change/").content.decode()
    assert "&quot;level&quot;: &quot;7&quot;" in page and "4 sessions" in page
    assert "Spring sale" in page and "Subscribed" in page
    assert "Send test notification" not in page  # viewers cannot act
    assert browser.post(f"/admin/players/player/{player.pk}/send-test/").status_code == 403
    assert browser.post(f"/admin/players/player/{player.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Player.objects.filter(pk=player.pk).exists()


def test_admin_sends_a_test_notification_through_the_api_service(client, own, player):
    browser = _login(client, own, Membership.Role.ADMIN)
    page = browser.get(f"/admin/players/player/{player.pk}/change/").content.decode()
    assert "Send test notification" in page
    browser.post(f"/admin/players/player/{player.pk}/send-test/")
    sent = Notification.objects.exclude(name="Spring sale").get()
    assert sent.kind == Notification.Kind.DASHBOARD and sent.recipients == 1
    assert sent.request["include_player_ids"] == [str(player.pk)]


def test_gdpr_delete_and_export(client, own, player, outsider):
    browser = _login(client, own, Membership.Role.OWNER)
    response = browser.post(f"/admin/players/player/{player.pk}/export-app/")
    export = CsvExport.objects.get(app=own.app)
    assert response.status_code == 302 and str(export.pk) in response["Location"]
    assert "rows so far" in browser.get(response["Location"]).content.decode()
    assert browser.post(f"/admin/players/player/{player.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Player.objects.filter(pk=player.pk).exists() and not Delivery.objects.exists()
    foreign = PlayerFactory(app=outsider.app)
    assert browser.post(f"/admin/players/player/{foreign.pk}/send-test/").status_code == 404
