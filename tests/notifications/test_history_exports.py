"""POST /notifications/{id}/history and /export_events, run to the downloaded CSV."""

from __future__ import annotations

import csv
import gzip
import io

import pytest
from django.core import mail
from django.utils import timezone

from notifications.models import Delivery, DeliveryBatch, Notification
from players.export_services import CONCURRENT_EXPORT, csv_export_run
from players.models import CsvExport
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def sent_notification(app, players, *, opened=()):
    now = timezone.now()
    notification = Notification.objects.create(app=app, request={"contents": {"en": "Hi"}}, send_after=now)
    batch = DeliveryBatch.objects.create(
        notification=notification, device_type=1, size=len(players), available_at=now
    )
    for player in players:
        Delivery.objects.create(
            notification=notification,
            batch=batch,
            player=player,
            status=Delivery.Status.SENT,
            sent_at=now,
            opened_at=now if player in opened else None,
        )
    return notification


def download(api, url: str) -> list[list[str]]:
    response = api.client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200, response.content
    return list(csv.reader(io.StringIO(gzip.decompress(b"".join(response.streaming_content)).decode())))


def test_history_of_clicked_recipients(api, own, media):
    players = PlayerFactory.create_batch(3, app=own.app, external_user_id="u")
    notification = sent_notification(own.app, players, opened=players[:1])
    response = api.post(
        f"/notifications/{notification.id}/history",
        {"app_id": str(own.app.id), "events": "clicked", "email": "ops@example.com"},
        key=own.app_key,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    url = body["destination_url"]
    assert api.client.get(url.removeprefix("http://testserver")).status_code == 403
    csv_export_run(export_id=str(CsvExport.objects.get(kind="clicked").id))
    rows = download(api, url)
    assert rows[0] == ["player_id", "onesignal_id", "external_id", "target_channel", "timestamp"]
    assert [r[0] for r in rows[1:]] == [str(players[0].id)]
    assert rows[1][2:4] == ["u", "push"] and rows[1][4].endswith("Z")
    assert mail.outbox and url in mail.outbox[0].body


def test_history_of_sent_recipients_lists_every_delivery(api, own, media):
    players = PlayerFactory.create_batch(4, app=own.app)
    notification = sent_notification(own.app, players)
    url = api.post(
        f"/notifications/{notification.id}/history",
        {"app_id": str(own.app.id), "events": "sent"},
        key=own.app_key,
    ).json()["destination_url"]
    csv_export_run(export_id=str(CsvExport.objects.get().id))
    rows = download(api, url)
    assert sorted(r[0] for r in rows[1:]) == sorted(str(p.id) for p in players)
    assert all(r[4] == "" for r in rows[1:])


def test_export_events_lists_every_recipient_with_its_status(api, own, media):
    players = PlayerFactory.create_batch(2, app=own.app)
    notification = sent_notification(own.app, players, opened=players[1:])
    response = api.post(
        f"/notifications/{notification.id}/export_events?app_id={own.app.id}", key=own.app_key
    )
    assert response.status_code == 200
    csv_export_run(export_id=str(CsvExport.objects.get().id))
    rows = download(api, response.json()["csv_file_url"])
    assert rows[0][:5] == ["notification_id", "player_id", "external_id", "device_type", "status"]
    assert {r[1]: r[7] != "" for r in rows[1:]} == {str(players[0].id): False, str(players[1].id): True}
    assert {r[4] for r in rows[1:]} == {"sent"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"events": "opened"}, 'events must be "sent" or "clicked"'),
        ({"events": "sent", "email": "nope"}, "email must be an email address"),
    ],
)
def test_history_rejects_bad_input(api, own, body, message):
    notification = sent_notification(own.app, [PlayerFactory(app=own.app)])
    response = api.post(
        f"/notifications/{notification.id}/history", {"app_id": str(own.app.id), **body}, key=own.app_key
    )
    assert response.status_code == 400 and response.json() == {"errors": [message]}
    assert not CsvExport.objects.exists()


def test_one_notification_export_at_a_time(api, own):
    notification = sent_notification(own.app, [PlayerFactory(app=own.app)])
    path = f"/notifications/{notification.id}/export_events?app_id={own.app.id}"
    assert api.post(path, key=own.app_key).status_code == 200
    again = api.post(path, key=own.app_key)
    assert again.status_code == 400 and again.json() == {"errors": [CONCURRENT_EXPORT]}


def test_another_apps_notification_is_not_found(api, own, outsider):
    foreign = sent_notification(outsider.app, [PlayerFactory(app=outsider.app)])
    for path, body in (
        (f"/notifications/{foreign.id}/history", {"app_id": str(own.app.id), "events": "sent"}),
        (f"/notifications/{foreign.id}/export_events?app_id={own.app.id}", None),
    ):
        response = api.post(path, body, key=own.app_key)
        assert response.status_code == 404 and response.json() == {"errors": ["Notification not found"]}
    assert (
        api.post(
            f"/notifications/{foreign.id}/export_events?app_id={outsider.app.id}", key=own.app_key
        ).status_code
        == 400
    )
    assert not CsvExport.objects.exists()
