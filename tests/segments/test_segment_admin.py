"""The dashboard's segment pages: filter builder data, live count, built-ins, tenant scoping."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from apps.models import Membership
from segments.filters import RELATIONS
from segments.models import Segment
from tests.factories import PlayerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, own):
    user = get_user_model().objects.create_user("marketer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="segments"))
    Membership.objects.create(organization=own.organization, user=user, role=Membership.Role.ADMIN)
    client.force_login(user)
    return client


@pytest.fixture
def players(own):
    PlayerFactory.create_batch(2, app=own.app, session_count=20)
    PlayerFactory(app=own.app, session_count=1)
    PlayerFactory(app=own.app, session_count=50, notification_types=-2)  # not subscribed


def _count(browser, app, filters):
    return browser.post(
        "/admin/segments/segment/count/", {"app": str(app.pk), "filters": json.dumps(filters)}
    ).json()


def test_live_count_uses_the_api_filter_language(browser, own, players):
    engaged = [{"field": "session_count", "relation": ">", "value": "10"}]
    assert _count(browser, own.app, engaged) == {"subscribers": 2}
    either = [*engaged, {"operator": "OR"}, {"field": "session_count", "relation": "<", "value": "2"}]
    assert _count(browser, own.app, either) == {"subscribers": 3}
    assert "error" in _count(browser, own.app, [{"field": "nope", "relation": "="}])


def test_live_count_refuses_another_tenants_app(browser, outsider):
    PlayerFactory(app=outsider.app)
    assert _count(browser, outsider.app, []) == {"error": "Choose an app."}


def test_builder_gets_the_filter_relations_and_pages_show_counts(browser, own, players):
    page = browser.get("/admin/segments/segment/add/")
    assert page.status_code == 200
    embedded = (
        page.content.decode()
        .split('id="herald-relations" type="application/json">', 1)[1]
        .split("</script>", 1)[0]
    )
    assert json.loads(embedded) == {k: list(v) for k, v in RELATIONS.items()}
    listing = browser.get("/admin/segments/segment/").content.decode()
    assert "Subscribed Users" in listing and "Built-in segments" in listing
    assert [
        count
        for app, name, count in browser.get("/admin/segments/segment/").context["builtin_counts"]
        if name == "Subscribed Users"
    ] == [3]


def test_saved_segment_shows_its_subscribers(browser, own, players):
    response = browser.post(
        "/admin/segments/segment/add/",
        {
            "app": str(own.app.pk),
            "name": "Engaged 10+",
            "description": "",
            "is_active": "on",
            "filters": json.dumps([{"field": "session_count", "relation": ">", "value": "10"}]),
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    segment = Segment.objects.get(name="Engaged 10+")
    page = browser.get(f"/admin/segments/segment/{segment.pk}/change/").content.decode()
    assert "Subscribed players" in page
    listing = browser.get("/admin/segments/segment/")
    assert "Engaged 10+" in listing.content.decode()
