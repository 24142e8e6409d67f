"""The OneSignal side's event webhooks through PUT /apps/{id} (User key) and GET /apps/{id}."""

from __future__ import annotations

import pytest

from tests.webhooks.support import make_webhook
from webhooks.models import Webhook

HOOK = {"url": "https://hooks.example.com/herald", "events": ["notification.sent", "notification.clicked"]}


def put_webhooks(api, tenant, webhooks, key=None):
    return api.put(f"/apps/{tenant.app.id}", {"webhooks": webhooks}, key=key or tenant.user_key)


def test_put_sets_webhooks_and_get_shows_them_without_secrets(api, own):
    response = put_webhooks(api, own, [{**HOOK, "secret": "receiver-secret-0123456789"}])
    assert response.status_code == 200, response.content
    assert response.json()["webhooks"] == [HOOK]
    body = api.get(f"/apps/{own.app.id}", key=own.user_key)
    assert body.json()["webhooks"] == [HOOK]
    assert b"secret" not in body.content
    webhook = Webhook.objects.get(app=own.app)
    assert (webhook.source, webhook.url, webhook.event_types) == ("onesignal", HOOK["url"], HOOK["events"])
    assert webhook.secret == "receiver-secret-0123456789"


def test_an_app_without_webhooks_has_no_webhooks_key(api, own):
    assert "webhooks" not in api.get(f"/apps/{own.app.id}", key=own.user_key).json()


def test_put_replaces_the_list_and_keeps_the_secret_of_a_kept_url(api, own):
    put_webhooks(api, own, [HOOK, {"url": "https://old.example.com/", "events": ["player.unsubscribed"]}])
    kept = Webhook.objects.get(app=own.app, url=HOOK["url"])
    replacement = [
        {**HOOK, "events": ["notification.failed"]},
        {"url": "https://new.example.com/", "events": ["notification.sent"]},
    ]
    response = put_webhooks(api, own, replacement)
    assert response.json()["webhooks"] == replacement
    assert Webhook.objects.get(pk=kept.pk).secret == kept.secret
    assert not Webhook.objects.filter(url="https://old.example.com/").exists()
    assert put_webhooks(api, own, []).status_code == 200
    assert not Webhook.objects.filter(app=own.app).exists()


def test_other_app_fields_leave_webhooks_alone(api, own):
    put_webhooks(api, own, [HOOK])
    assert api.put(f"/apps/{own.app.id}", {"site_name": "Example"}, key=own.user_key).status_code == 200
    assert Webhook.objects.filter(app=own.app).count() == 1


def test_mfp_webhooks_are_not_touched(api, own):
    make_webhook(own.app, url="https://mfp.example.com/", events=["onDeviceRegister"], name="mfp")
    put_webhooks(api, own, [])
    assert Webhook.objects.filter(app=own.app, source="mfp").count() == 1
    assert "webhooks" not in api.get(f"/apps/{own.app.id}", key=own.user_key).json()


@pytest.mark.parametrize(
    ("webhooks", "message"),
    [
        ([{"url": "http://127.0.0.1/hook", "events": ["notification.sent"]}], "webhooks[0].url"),
        ([{"url": "http://169.254.169.254/", "events": ["notification.sent"]}], "non-public"),
        ([{"url": "http://10.0.0.8/", "events": ["notification.sent"]}], "non-public"),
        ([{"url": "ftp://x.example.com/", "events": ["notification.sent"]}], "webhooks[0].url"),
        (
            [{"url": "https://x.example.com/", "events": ["onDeviceRegister"]}],
            "unknown event type onDeviceRegister",
        ),
        ([{"url": "https://x.example.com/", "events": []}], "webhooks[0].events"),
        ([{"url": "https://x.example.com/"}], "webhooks[0].events"),
        (
            [HOOK, {"url": "https://x.example.com/", "events": ["notification.sent"], "secret": "x"}],
            "webhooks[1].secret",
        ),
        ([HOOK, "https://x.example.com/"], "webhooks[1]"),
        ({"url": "https://x.example.com/"}, "webhooks"),
        ("https://x.example.com/", "webhooks"),
    ],
)
def test_invalid_webhooks_are_a_400_and_change_nothing(api, own, settings, webhooks, message):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    put_webhooks(api, own, [HOOK])
    response = api.put(
        f"/apps/{own.app.id}", {"site_name": "Changed", "webhooks": webhooks}, key=own.user_key
    )
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert message in error
    assert list(Webhook.objects.filter(app=own.app).values_list("url", flat=True)) == [HOOK["url"]]
    own.app.refresh_from_db()
    assert own.app.site_name != "Changed"  # no partial write


def test_an_outsider_cannot_read_or_set_another_organizations_webhooks(api, own, outsider):
    put_webhooks(api, own, [HOOK])
    assert api.get(f"/apps/{own.app.id}", key=outsider.user_key).status_code == 404
    assert put_webhooks(api, own, [], key=outsider.user_key).status_code == 404
    assert Webhook.objects.filter(app=own.app).count() == 1
    assert "webhooks" not in api.get(f"/apps/{outsider.app.id}", key=outsider.user_key).json()


def test_an_app_key_cannot_set_webhooks(api, own):
    assert put_webhooks(api, own, [HOOK], key=own.app_key).status_code in (400, 403)
    assert not Webhook.objects.exists()
