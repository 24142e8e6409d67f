"""Tenant isolation matrix of the dashboard (the Django admin), generated from ``admin.site``.

For every registered ModelAdmin, every URL its ``get_urls()`` serves is called on the victim
organization's object by:

- ``owner``: an owner of the victim organization: the page works and a POST of the form as the
  browser would send it succeeds (this proves the POSTs below are valid, so their refusal is the
  tenant check and not a form error);
- ``outsider``: a staff member (admin role, every dashboard permission) of another organization:
  the object does not exist for them (302 to the dashboard index, 403 or 404), lists, forms and
  lookups show none of the victim's data, and no POST changes anything;
- ``viewer``: a viewer of the victim organization (same permissions): may look, may not change,
  add, delete or run actions: every POST is refused and changes nothing.

Also covered: the changelist actions (``_selected_action`` with the victim's ids), the add form
posted with the victim's app or organization, ``autocomplete/`` for every ``autocomplete_fields``
(inlines too) and ``raw_id_fields`` lookups. ``django.contrib.auth``'s User and Group pages are
operator-only: tenant staff hold no ``auth`` permission, so every call is 403.

Each refused case is checked against a snapshot of every table (``support.snapshot``). A
ModelAdmin without a victim object in ``victim_objects`` or a custom URL without an entry in
``CUSTOM_URLS`` fails the suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.members import DASHBOARD_APP_LABELS
from apps.models import Membership
from apps.services import app_key_issue, user_key_issue
from imfpush.clients import confidential_client_create
from imfpush.models import Tag
from imfpush.services import mfp_application_create
from notifications.models import Notification, Template
from players.models import CsvExport, CsvImport
from tests.conftest import make_tenant
from tests.factories import AppFactory, PlayerFactory, SegmentFactory
from tests.security.support import changed_tables, leaked_markers, module_data, rolled_back, snapshot
from webhooks.models import Webhook, WebhookCall
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

# What tenant staff are granted (apps/members.py): every permission of the project's own apps, none
# of django.contrib.auth's.
STAFF_APP_LABELS = DASHBOARD_APP_LABELS
# Operator-only pages: Django's users and groups, and django-axes' login attempts (the login
# lockout): not tenant data, and tenant staff hold no permission on them.
OPERATOR_ONLY = {"auth.user", "auth.group", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}
PUBLIC_IP = "93.184.216.34"


@dataclass
class World:
    objects: dict[str, object]  # model label (lowercase) -> the victim's object
    markers: list[str]
    outsider_markers: list[str]
    clients: dict[str, Client]
    victim_org: object
    victim_app: object
    viewer: object


def staff(username: str, organization, role: str):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=STAFF_APP_LABELS))
    Membership.objects.create(organization=organization, user=user, role=role)
    return user


def populate_tenant(tag: str):
    """One object of every dashboard model for one organization, named with markers."""
    tenant = make_tenant()
    org, app = tenant.organization, tenant.app
    org.name = f"mark-{tag}-org"
    org.save()
    app.name = f"mark-{tag}-app"
    app.save()
    player = PlayerFactory(app=app, identifier=f"mark-{tag}-token", external_user_id=f"mark-{tag}-user")
    now = timezone.now()
    notification = Notification.objects.create(
        app=app, name=f"mark-{tag}-notification", request={"contents": {"en": "Hi"}}, send_after=now
    )
    export = CsvExport.objects.create(
        app=app, token=f"{tag}{'0' * (32 - len(tag))}", segment_name=f"mark-{tag}-export", expires_at=now
    )
    mfp_app = mfp_application_create(
        organization=org, body={"applicationId": f"mark-{tag}-mfp".replace("-", ".")}
    )
    webhook = webhook_create(
        app=app,
        source=Webhook.Source.ONESIGNAL,
        name=f"mark-{tag}-hook",
        url=f"https://{PUBLIC_IP}/mark-{tag}-hookurl",
        event_types=["notification.sent"],
    )
    objects = {
        "apps.organization": org,
        "apps.app": app,
        "apps.appkey": app_key_issue(app=app, label=f"mark-{tag}-appkey")[0],
        "apps.userkey": user_key_issue(organization=org, label=f"mark-{tag}-userkey")[0],
        "players.player": player,
        "players.csvexport": export,
        "segments.segment": SegmentFactory(app=app, name=f"mark-{tag}-segment"),
        "notifications.notification": notification,
        "notifications.template": Template.objects.create(
            app=app, name=f"mark-{tag}-template", fields={"contents": {"en": "Hi"}}
        ),
        "imfpush.confidentialclient": confidential_client_create(
            organization=org, client_id=f"mark-{tag}-client"
        )[0],
        "imfpush.mfpapplication": mfp_app,
        "imfpush.tag": Tag.objects.create(app=mfp_app.app, name=f"mark-{tag}-mfptag"),
        "webhooks.webhook": webhook,
        "webhooks.webhookcall": WebhookCall.objects.create(
            webhook=webhook, event_type="notification.sent", payload={"marker": f"mark-{tag}-call"}
        ),
        "auth.group": Group.objects.create(name=f"mark-{tag}-group"),
        "players.csvimport": CsvImport.objects.create(
            app=app,
            file_name=f"mark-{tag}-import.csv",
            relative_path=f"imports/{tag}.csv",
            status=CsvImport.Status.COMPLETED,
        ),
    }
    markers = [
        f"mark-{tag}-{what}"
        for what in (
            "app",
            "token",
            "user",
            "notification",
            "export",
            "appkey",
            "userkey",
            "segment",
            "template",
            "client",
            "mfptag",
            "hook",
            "call",
            "import",
        )
    ]
    return org, app, objects, markers


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker):
    with module_data(django_db_blocker):
        org, app, objects, markers = populate_tenant("victim")
        _outsider_org, _outsider_app, _objects, outsider_markers = populate_tenant("outsider")
        owner = staff("mark-victim-owner", org, Membership.Role.OWNER)
        viewer = staff("mark-victim-viewer", org, Membership.Role.VIEWER)
        outsider = staff("outsider-admin", _outsider_org, Membership.Role.ADMIN)
        objects["auth.user"] = owner
        attempt = {"username": "mark-victim-owner", "ip_address": "203.0.113.5", "user_agent": "test"}
        objects["axes.accessattempt"] = AccessAttempt.objects.create(
            **attempt,
            get_data="",
            post_data="",
            http_accept="*/*",
            path_info="/admin/login/",
            failures_since_start=1,
        )
        objects["axes.accesslog"] = AccessLog.objects.create(
            **attempt, http_accept="*/*", path_info="/admin/login/"
        )
        objects["axes.accessfailurelog"] = AccessFailureLog.objects.create(
            **attempt, http_accept="*/*", path_info="/admin/login/", locked_out=False
        )
        operator = get_user_model().objects.create_superuser("operator", password="pw")
        clients = {
            "owner": login(owner),
            "viewer": login(viewer),
            "outsider": login(outsider),
            "operator": login(operator),
        }
        # A second app of the victim organization, for forms that need a free app (one MFP
        # application per app).
        AppFactory(organization=org, name="mark-victim-spare")
        yield World(objects, markers, outsider_markers, clients, org, app, viewer)


@pytest.fixture
def world(module_world, db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # uploads and exports write files there
    return module_world


# --- forms as a browser sends them -----------------------------------------------------------------


class _FormParser(HTMLParser):
    """The fields of the admin's change form (``<form id="<model>_form">``), as a browser would
    submit them: checked boxes only, selected options, textarea contents."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file", "image"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.data.append((name, attrs.get("value", "on" if attrs.get("type") == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data.append((self._select, attrs.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.data.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None


def browser_form(response, model) -> dict[str, list[str]]:
    parser = _FormParser(f"{model._meta.model_name}_form")
    parser.feed(response.content.decode())
    data: dict[str, list[str]] = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    return data


# --- what each model's forms need ------------------------------------------------------------------


def add_data(label: str, world: World) -> dict | None:
    """A valid add form posted with the victim's app or organization (None: the model has no add
    form for tenant staff, or adding names no tenant)."""
    app = str(world.victim_app.pk)
    org = str(world.victim_org.pk)
    spare = str(world.objects["apps.app"].organization.apps.get(name="mark-victim-spare").pk)
    return {
        "apps.app": {"organization": org, "name": "added-app", "apns_env": "production"},
        "apps.appkey": {"app": app, "label": "added-key"},
        "apps.userkey": {"organization": org, "label": "added-key"},
        "segments.segment": {
            "app": app,
            "name": "added-segment",
            "filters": '[{"field": "session_count", "relation": ">", "value": "1"}]',
        },
        "notifications.template": {
            "app": app,
            "name": "added-template",
            "fields": '{"contents": {"en": "x"}}',
        },
        "imfpush.confidentialclient": {
            "organization": org,
            "client_id": "added-client",
            "name": "added",
            "allowed_scope": "*",
        },
        "imfpush.mfpapplication": {"app": spare, "application_id": "added.app", "enabled": "on"},
        "webhooks.webhook": {
            "app": app,
            "source": "onesignal",
            "name": "added-hook",
            "url": f"https://{PUBLIC_IP}/added",
            "event_types": ["notification.sent"],
        },
    }.get(label)


# Where each custom URL's object comes from and how it is called. Every URL a ModelAdmin adds in
# get_urls() needs an entry: (methods, POST data, whether the view acts (POST) or only shows).
CUSTOM_URLS: dict[str, tuple[tuple[str, ...], dict]] = {
    "auth_user_password_change": (
        ("GET", "POST"),
        {"password1": "Changed-pw-123", "password2": "Changed-pw-123"},
    ),
    "apps_app_overview": (("GET",), {}),
    "apps_organization_add_member": (
        ("GET", "POST"),
        {
            "username": "intruder",
            "email": "intruder@example.com",
            "role": "owner",
            "password1": "Str0ng-pass-phrase-9",
            "password2": "Str0ng-pass-phrase-9",
        },
    ),
    "apps_app_credentials": (("GET", "POST"), {}),
    "players_player_send_test": (("POST",), {}),
    "players_player_export_app": (("POST",), {}),
    "notifications_notification_progress": (("GET",), {}),
    "notifications_notification_cancel": (("POST",), {}),
    "notifications_notification_duplicate": (("POST",), {}),
    "notifications_notification_export_sent": (("POST",), {}),
    "notifications_notification_export_clicked": (("POST",), {}),
    # Not object URLs: the victim's app goes in the POST body.
    "notifications_notification_compose": (("GET", "POST"), {"app": "{app}", "contents_en": "Hi"}),
    "notifications_notification_estimate": (("POST",), {"app": "{app}"}),
    "segments_segment_count": (("POST",), {"app": "{app}", "filters": "[]"}),
    # bytes: an uploaded file.
    "players_player_import_csv": (
        ("GET", "POST"),
        {"app": "{app}", "file": b"identifier,device_type\nx,1\n"},
    ),
}
STANDARD = {"changelist", "add", "history", "delete", "change"}


def admin_urls():
    """``(model label, url name, kind, pattern)`` for every URL of every registered ModelAdmin."""
    found = []
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            if pattern.name is None:
                continue  # "<path:object_id>/": a redirect to the change page, checked with it
            kind = pattern.name.removeprefix(prefix)
            found.append(
                (model._meta.label_lower, pattern.name, kind if kind in STANDARD else "custom", pattern)
            )
    return found


def refused(response) -> bool:
    """The object does not exist for the caller (Django's redirect to the index, or 404), or the
    action is forbidden (403)."""
    if response.status_code == 302:
        return response["Location"] == reverse("admin:index")
    return response.status_code in (403, 404)


def check_refused_post(client, url: str, data: dict, markers: list[str], label, before=None):
    """POST, and check that nothing changed (against ``before``, the test's snapshot, or one taken
    now) and none of ``markers`` is in the answer."""
    with rolled_back():
        before = before if before is not None else snapshot()
        response = client.post(url, data)
        after = snapshot()
    assert not changed_tables(before, after), (*label, response.status_code, changed_tables(before, after))
    assert not leaked_markers(response.content, markers), (*label, response.content[:500])
    return response


# --- the tests ------------------------------------------------------------------------------------


def test_every_admin_url_has_a_matrix_entry(world):
    labels = {model._meta.label_lower for model in admin.site._registry}
    assert labels <= set(world.objects), f"ModelAdmins without a victim object: {labels - set(world.objects)}"
    custom = {name for _label, name, kind, _p in admin_urls() if kind == "custom"}
    assert custom <= set(CUSTOM_URLS), f"admin URLs without a matrix entry: {custom - set(CUSTOM_URLS)}"
    assert not set(CUSTOM_URLS) - custom, f"stale entries: {set(CUSTOM_URLS) - custom}"


def model_labels():
    return sorted({model._meta.label_lower for model in admin.site._registry})


def persona_params():
    """Every model as the outsider (make test); as the viewer under ``slow``, since the viewer's
    POSTs are also made, per model, by test_object_pages."""
    return [
        pytest.param(label, persona, marks=[pytest.mark.slow] if persona == "viewer" else [])
        for label in model_labels()
        for persona in ("outsider", "viewer")
    ]


@pytest.mark.parametrize(("label", "persona"), persona_params())
def test_changelist_add_and_actions(label, persona, world):
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    victim = world.objects[label]
    info = (model._meta.app_label, model._meta.model_name)
    changelist = reverse(f"admin:{info[0]}_{info[1]}_changelist")
    owner = world.clients["operator" if label in OPERATOR_ONLY else "owner"]
    owner_page = owner.get(changelist)
    assert owner_page.status_code == 200
    pristine = snapshot()

    client = world.clients[persona]
    markers = world.markers if persona == "outsider" else []
    response = client.get(changelist)
    if label in OPERATOR_ONLY:
        assert response.status_code == 403, (label, persona)
    else:
        assert response.status_code in (200, 403), (label, persona)
    assert not leaked_markers(response.content, markers), (label, persona, "changelist")
    # A raw-id or autocomplete popup is the changelist with _popup/_to_field.
    popup = client.get(changelist, {"_popup": "1", "_to_field": "id"})
    assert not leaked_markers(popup.content, markers), (label, persona, "popup")

    # Every action, on the victim's object.
    model_admin = admin.site._registry[model]
    actions = list(model_admin.get_actions(owner_page.wsgi_request)) or ["delete_selected"]
    for action in actions:
        data = {"action": action, "_selected_action": [str(victim.pk)], "post": "yes", "index": "0"}
        check_refused_post(client, changelist, data, markers, (label, persona, action), pristine)

    # The add form: shows no victim choice to an outsider; posted with the victim's app or
    # organization, it creates nothing.
    add_url = reverse(f"admin:{info[0]}_{info[1]}_add")
    response = client.get(add_url)
    assert response.status_code in (200, 403), (label, persona, "add")
    assert not leaked_markers(response.content, markers), (label, persona, "add form")
    data = add_data(label, world)
    if data is not None:
        # The add form as the owner's browser sends it (management forms of inlines included),
        # filled in with the victim's app or organization.
        data = {**browser_form(owner.get(add_url), model), **data}
        with rolled_back():
            created = owner.post(add_url, data)
            errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', created.content.decode(), re.S)
            assert created.status_code == 302, (label, "owner add", errors)
        check_refused_post(client, add_url, data, markers, (label, persona, "add"), pristine)


@pytest.mark.parametrize("label", model_labels())
def test_object_pages(label, world):
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    victim = world.objects[label]
    info = (model._meta.app_label, model._meta.model_name)
    owner = world.clients["operator" if label in OPERATOR_ONLY else "owner"]
    change = reverse(f"admin:{info[0]}_{info[1]}_change", args=[victim.pk])
    delete = reverse(f"admin:{info[0]}_{info[1]}_delete", args=[victim.pk])
    history = reverse(f"admin:{info[0]}_{info[1]}_history", args=[victim.pk])

    page = owner.get(change)
    assert page.status_code == 200, (label, "owner change")
    form = browser_form(page, model)
    can_change = "_save" in page.content.decode()
    if can_change:
        with rolled_back():
            saved = owner.post(change, {**form, "_save": "Save"})
            errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', saved.content.decode(), re.S)
            assert saved.status_code == 302, (label, "owner save", errors)
    assert owner.get(delete).status_code in (200, 403)
    assert owner.get(history).status_code == 200

    pristine = snapshot()
    outsider = world.clients["outsider"]
    for url in (change, delete, history):
        response = outsider.get(url)
        assert refused(response), (label, "outsider", url, response.status_code)
        assert not leaked_markers(response.content, world.markers), (label, "outsider", url)
    # "<id>/" only redirects to the change page, which is refused as above.
    bare = outsider.get(change.removesuffix("change/"))
    assert bare.status_code == 302 and bare["Location"] == change, (label, bare.status_code)
    saving = {**form, "_save": "Save"}
    check_refused_post(outsider, change, saving, world.markers, (label, "outsider", "change"), pristine)
    check_refused_post(
        outsider, delete, {"post": "yes"}, world.markers, (label, "outsider", "delete"), pristine
    )

    viewer = world.clients["viewer"]
    viewer.get(change)  # may look (or not): either way nothing may change below
    tweaked = dict(form)
    if label == "apps.organization":
        # A viewer promoting themselves through the members inline.
        tweaked = {k: (["owner"] if k.endswith("-role") else v) for k, v in form.items()}
    check_refused_post(
        viewer, change, {**tweaked, "_save": "Save"}, [], (label, "viewer", "change"), pristine
    )
    check_refused_post(viewer, delete, {"post": "yes"}, [], (label, "viewer", "delete"), pristine)


@pytest.mark.parametrize(
    "name", sorted({name for _l, name, kind, _p in admin_urls() if kind == "custom"}), ids=str
)
def test_custom_views(name, world):
    label, _name, _kind, pattern = next(u for u in admin_urls() if u[1] == name)
    methods, data = CUSTOM_URLS[name]
    data = {
        k: SimpleUploadedFile("players.csv", v) if isinstance(v, bytes) else v.format(app=world.victim_app.pk)
        for k, v in data.items()
    }
    kwargs = {name: world.objects[label].pk for name in pattern.pattern.converters}
    url = reverse(f"admin:{name}", kwargs=kwargs)
    for persona in ("outsider", "viewer"):
        client = world.clients[persona]
        markers = world.markers if persona == "outsider" else []
        if "GET" in methods:
            response = client.get(url)
            if kwargs and persona == "outsider":
                assert refused(response), (name, persona, response.status_code)
            assert not leaked_markers(response.content, markers), (name, persona, "GET")
        if "POST" in methods:
            response = check_refused_post(client, url, data, markers, (name, persona, "POST"))
            if kwargs:
                assert refused(response), (name, persona, "POST", response.status_code)


def autocomplete_fields():
    """``(app_label, model_name, field_name)`` of every autocomplete field, inlines included."""
    found = []
    for model, model_admin in admin.site._registry.items():
        for owner_admin, owner_model in [(model_admin, model)] + [(i, i.model) for i in model_admin.inlines]:
            for field in owner_admin.autocomplete_fields:
                found.append((owner_model._meta.app_label, owner_model._meta.model_name, field))
    return found


@pytest.mark.parametrize(("app_label", "model_name", "field_name"), autocomplete_fields())
def test_autocomplete_shows_no_other_tenant(app_label, model_name, field_name, world):
    query = {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": ""}
    for persona in ("outsider",):
        response = world.clients[persona].get("/admin/autocomplete/", query)
        assert response.status_code in (200, 403), (model_name, field_name, persona)
        if response.status_code == 200:
            ids = {item["id"] for item in response.json()["results"]}
            victim_ids = {str(o.pk) for o in world.objects.values()}
            assert not ids & victim_ids, (model_name, field_name, persona, ids & victim_ids)
            assert not leaked_markers(response.content, world.markers), (model_name, field_name, persona)


def test_raw_id_fields_are_covered():
    """raw_id_fields open the target's changelist as a popup, which test_changelist_add_and_actions
    checks for every model; this lists them so a new one is noticed."""
    raw = [
        (model._meta.label_lower, field)
        for model, model_admin in admin.site._registry.items()
        for field in model_admin.raw_id_fields
    ]
    for label, field in raw:
        target = next(m for m in admin.site._registry if m._meta.label_lower == label)._meta.get_field(field)
        assert target.related_model in admin.site._registry, (label, field)


def test_owner_sees_their_own_objects(world):
    """The markers the outsider must not see are really on these pages for their owner."""
    owner = world.clients["owner"]
    shown = owner.get(reverse("admin:players_player_changelist")).content
    assert leaked_markers(shown, ["mark-victim-token"]) == ["mark-victim-token"]
    shown = owner.get(reverse("admin:apps_appkey_changelist")).content
    assert leaked_markers(shown, ["mark-victim-appkey"]) == ["mark-victim-appkey"]


def test_a_viewer_cannot_promote_themselves_to_owner(world):
    """Found by this matrix: viewers could post the organization's change form (members inline)."""
    viewer = world.clients["viewer"]
    url = reverse("admin:apps_organization_change", args=[world.victim_org.pk])
    form = browser_form(world.clients["owner"].get(url), type(world.victim_org))
    promoted = {k: (["owner"] if k.endswith("-role") else v) for k, v in form.items()}
    with rolled_back():
        response = viewer.post(url, {**promoted, "_save": "Save"})
        role = Membership.objects.get(user=world.viewer).role
    assert response.status_code == 403 and role == Membership.Role.VIEWER


def test_the_players_app_filter_lists_only_the_callers_apps(world):
    """Found by this matrix: the players list's "app" filter listed every tenant's app names."""
    page = world.clients["outsider"].get(reverse("admin:players_player_changelist")).content.decode()
    assert "mark-outsider-app" in page and "mark-victim-app" not in page
