"""Webhooks in the dashboard: create (secret shown once), SSRF rule, test event, delivery log,
secret rotation, and tenant scoping (an outsider's webhooks are invisible and untouchable)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from apps.models import Membership
from tests.webhooks.support import make_webhook
from webhooks.delivery import verify_signature, webhook_call_deliver
from webhooks.models import Webhook, WebhookCall

SECRET_SHOWN = re.compile(r"<code>(whsec_[A-Za-z0-9_\-]+)</code>")


def staff_user(own, role=Membership.Role.ADMIN, username="staff"):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["apps", "webhooks"]))
    Membership.objects.create(organization=own.organization, user=user, role=role)
    return user


@pytest.fixture
def browser(client, own):
    client.force_login(staff_user(own))
    return client


def add_form(app, **overrides):
    return {
        "app": str(app.pk),
        "source": "onesignal",
        "name": "ops",
        "url": "https://hooks.example.com/herald",
        "event_types": ["notification.sent", "player.unsubscribed"],
        "new_secret": "",
        **overrides,
    }


def test_adding_a_webhook_shows_its_generated_secret_once(browser, own):
    response = browser.post("/admin/webhooks/webhook/add/", add_form(own.app), follow=True)
    assert response.status_code == 200
    shown = SECRET_SHOWN.search(response.content.decode())
    webhook = Webhook.objects.get(app=own.app)
    assert shown and shown[1] == webhook.secret
    assert (webhook.source, webhook.event_types) == (
        "onesignal",
        ["notification.sent", "player.unsubscribed"],
    )
    change = browser.get(f"/admin/webhooks/webhook/{webhook.pk}/change/").content.decode()
    listing = browser.get("/admin/webhooks/webhook/").content.decode()
    assert webhook.secret not in change and webhook.secret not in listing


def test_a_typed_secret_is_used_and_never_rendered(browser, own):
    browser.post("/admin/webhooks/webhook/add/", add_form(own.app, new_secret="typed-secret-0123456789"))
    webhook = Webhook.objects.get(app=own.app)
    assert webhook.secret == "typed-secret-0123456789"
    assert "typed-secret" not in browser.get(f"/admin/webhooks/webhook/{webhook.pk}/change/").content.decode()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"url": "http://127.0.0.1:8000/hook"}, "non-public address"),
        ({"url": "http://169.254.169.254/"}, "non-public address"),
        ({"url": "file:///etc/passwd"}, "https URL"),
        ({"event_types": ["onDeviceRegister"]}, "Not an event of this webhook"),
        ({"source": "mfp", "event_types": ["notification.sent"]}, "Not an event of this webhook"),
        ({"new_secret": "short"}, "Use 16 to 255 characters"),
    ],
)
def test_invalid_webhooks_are_refused(browser, own, settings, overrides, error):
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = []
    response = browser.post("/admin/webhooks/webhook/add/", add_form(own.app, **overrides))
    assert response.status_code == 200 and error in response.content.decode()
    assert not Webhook.objects.exists()


def test_the_test_event_action_delivers_a_signed_test_event(browser, own, receiver, enqueued):
    webhook = make_webhook(own.app, url=receiver.url, events=["notification.sent"], source="onesignal")
    response = browser.post(
        "/admin/webhooks/webhook/",
        {"action": "send_test_event", "_selected_action": [str(webhook.pk)]},
        follow=True,
    )
    assert "Test event queued for 1 webhook" in response.content.decode()
    call = WebhookCall.objects.get(webhook=webhook)
    assert call.event_type == "test"
    webhook_call_deliver(call_id=call.pk)
    [request] = receiver.requests
    body = json.loads(request.body)
    assert body["event"] == "test" and body["app_id"] == str(own.app.pk)
    assert body["data"]["webhook"] == webhook.name
    assert verify_signature(webhook.secret, request.headers["x-herald-signature"], request.body)
    # The change page's delivery log shows the call (and the log page lists it).
    change = browser.get(f"/admin/webhooks/webhook/{webhook.pk}/change/").content.decode()
    assert "Delivered" in change and ">test<" in change
    assert browser.get("/admin/webhooks/webhookcall/").status_code == 200


def test_rotating_shows_a_new_secret(browser, own):
    webhook = make_webhook(
        own.app, url="https://h.example.com/", events=["notification.sent"], source="onesignal"
    )
    old = webhook.secret
    response = browser.post(
        "/admin/webhooks/webhook/",
        {"action": "rotate_secrets", "_selected_action": [str(webhook.pk)]},
        follow=True,
    )
    webhook.refresh_from_db()
    assert webhook.secret != old
    assert SECRET_SHOWN.search(response.content.decode())[1] == webhook.secret


def test_an_outsider_cannot_see_or_touch_another_organizations_webhooks(browser, own, outsider):
    mine = make_webhook(own.app, url="https://mine.example.com/", name="mine-hook")
    theirs = make_webhook(outsider.app, url="https://theirs.example.com/", name="their-hook")
    listing = browser.get("/admin/webhooks/webhook/").content.decode()
    assert "mine-hook" in listing and "their-hook" not in listing
    assert browser.get(f"/admin/webhooks/webhook/{theirs.pk}/change/").status_code in (302, 404)
    browser.post(
        "/admin/webhooks/webhook/", {"action": "send_test_event", "_selected_action": [str(theirs.pk)]}
    )
    browser.post(
        "/admin/webhooks/webhook/", {"action": "rotate_secrets", "_selected_action": [str(theirs.pk)]}
    )
    assert not WebhookCall.objects.filter(webhook=theirs).exists()
    assert Webhook.objects.get(pk=theirs.pk).secret == theirs.secret
    response = browser.post("/admin/webhooks/webhook/add/", add_form(outsider.app, name="planted"))
    assert response.status_code == 200 and not Webhook.objects.filter(name="planted").exists()
    WebhookCall.objects.create(webhook=theirs, event_type="test", payload={"secret-ish": "their-payload"})
    assert "their-payload" not in browser.get("/admin/webhooks/webhookcall/").content.decode()
    assert mine.pk


def test_viewers_see_webhooks_but_cannot_change_or_test_them(client, own):
    client.force_login(staff_user(own, role=Membership.Role.VIEWER, username="viewer"))
    webhook = make_webhook(own.app, url="https://h.example.com/", name="watched")
    assert "watched" in client.get("/admin/webhooks/webhook/").content.decode()
    response = client.post(
        f"/admin/webhooks/webhook/{webhook.pk}/change/",
        {"url": "https://evil.example.com/", "event_types": ["onDeviceRegister"]},
    )
    assert response.status_code == 403
    client.post(
        "/admin/webhooks/webhook/", {"action": "send_test_event", "_selected_action": [str(webhook.pk)]}
    )
    assert not WebhookCall.objects.exists()
    assert client.post("/admin/webhooks/webhook/add/", add_form(own.app, name="new")).status_code in (
        200,
        403,
    )
    assert not Webhook.objects.filter(name="new").exists()
    assert Webhook.objects.get(pk=webhook.pk).url == "https://h.example.com/"


def test_rotate_encryption_reencrypts_webhook_secrets_under_the_first_key(own, settings):
    from django.core.management import call_command
    from django.db import connection

    old, new = settings.HERALD_ENCRYPTION_KEYS
    settings.HERALD_ENCRYPTION_KEYS = [new]
    webhook = make_webhook(own.app, url="https://h.example.com/", secret="rotate-me-0123456789")
    settings.HERALD_ENCRYPTION_KEYS = [old, new]
    call_command("rotate_encryption", stdout=None)
    settings.HERALD_ENCRYPTION_KEYS = [old]
    assert Webhook.objects.get(pk=webhook.pk).secret == "rotate-me-0123456789"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhook WHERE id = %s", [webhook.pk])
        assert "rotate-me" not in cursor.fetchone()[0]
