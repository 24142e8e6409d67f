"""The dashboard's compose form: it builds the same body ``POST /notifications`` takes.

Sending, the audience estimate and the test-player preview all go through
``notifications.services`` / ``notifications.targeting``, so the dashboard cannot diverge from
the API: a dashboard send is validated, targeted and delivered exactly like an API send.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils import timezone

from apps.models import App
from core.api import limits
from core.api.errors import ApiError
from notifications.models import Notification
from notifications.recipient_estimate import estimated_recipients
from notifications.services import notification_create
from notifications.targeting import resolve_audience
from notifications.validation import validate_notification
from players.models import Player
from segments.models import BUILTIN_SEGMENTS, Segment

PLATFORM_CHOICES = [
    ("isIos", "iOS"),
    ("isAndroid", "Android"),
    ("isHuawei", "Huawei"),
    ("isAnyWeb", "Web"),
    ("isWP_WNS", "Windows"),
    ("isAdm", "Amazon"),
    ("isMacOSX", "macOS"),
]
AUDIENCE_CHOICES = [("segments", "Segments"), ("filters", "Filters"), ("test", "Test players")]
DELAY_CHOICES = [
    ("", "Everyone at once"),
    ("timezone", "Timezone: same local time"),
    ("last-active", "Intelligent"),
]


def _json_field(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=help_text
    )


class ComposeForm(forms.Form):
    app = forms.ModelChoiceField(queryset=App.objects.none())
    name = forms.CharField(required=False, max_length=128, help_text="Shown in the dashboard only.")
    headings = _json_field("Title", 'Plain text (English) or a language map: {"en": "Hi", "fr": "Salut"}')
    contents = _json_field("Message", 'Plain text (English) or a language map: {"en": "Hello", "es": "Hola"}')
    audience = forms.ChoiceField(choices=AUDIENCE_CHOICES, initial="segments", widget=forms.RadioSelect)
    included_segments = forms.MultipleChoiceField(required=False, choices=())
    excluded_segments = forms.MultipleChoiceField(required=False, choices=())
    filters = _json_field("Filters", 'The API\'s filter list: [{"field": "tag", "key": "level", ...}]')
    platforms = forms.MultipleChoiceField(
        required=False,
        choices=PLATFORM_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: every platform.",
    )
    big_picture = forms.URLField(required=False, assume_scheme="https", label="Image (Android/web)")
    ios_attachment = forms.URLField(required=False, assume_scheme="https", label="Image (iOS attachment)")
    url = forms.URLField(required=False, assume_scheme="https", label="Launch URL")
    buttons = _json_field("Buttons", '[{"id": "yes", "text": "Yes"}]')
    data = _json_field("Data", '{"key": "value"}')
    send_after = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-12-01 09:00. Empty: now.")
    delayed_option = forms.ChoiceField(required=False, choices=DELAY_CHOICES)
    delivery_time_of_day = forms.CharField(required=False, help_text='With timezone delivery, e.g. "9:00AM".')
    throttle_rate_per_minute = forms.IntegerField(required=False, min_value=0)

    def __init__(self, *args, apps, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].queryset = apps
        names = [builtin.name for builtin in BUILTIN_SEGMENTS]
        names += list(Segment.objects.filter(app__in=apps).values_list("name", flat=True).distinct())
        choices = [(name, name) for name in dict.fromkeys(names)]
        self.fields["included_segments"].choices = choices
        self.fields["excluded_segments"].choices = choices

    def _language_map(self, name: str) -> dict | None:
        raw = (self.cleaned_data.get(name) or "").strip()
        if not raw:
            return None
        if raw.startswith("{"):
            value = self._json(name, raw)
            if not isinstance(value, dict):
                raise forms.ValidationError({name: "A language map is a JSON object."})
            return value
        return {"en": raw}

    def _json(self, name: str, raw: str) -> Any:
        try:
            return limits.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError({name: f"Invalid JSON: {exc.msg}"}) from exc

    def body(self, *, test_players: list[str] | None = None) -> dict:
        """The ``POST /notifications`` body this form describes."""
        data = self.cleaned_data
        body: dict[str, Any] = {"app_id": str(data["app"].pk)}
        for name in ("headings", "contents"):
            value = self._language_map(name)
            if value:
                body[name] = value
        if data.get("name"):
            body["name"] = data["name"]
        if test_players is not None or data["audience"] == "test":
            body["include_player_ids"] = test_players if test_players is not None else self.test_player_ids()
        elif data["audience"] == "filters":
            body["filters"] = self._json("filters", data.get("filters") or "[]")
        else:
            body["included_segments"] = data.get("included_segments") or []
            if data.get("excluded_segments"):
                body["excluded_segments"] = data["excluded_segments"]
        for flag in data.get("platforms") or []:
            body[flag] = True
        for name in ("big_picture", "url"):
            if data.get(name):
                body[name] = data[name]
        if data.get("ios_attachment"):
            body["ios_attachments"] = {"image": data["ios_attachment"]}
        for name in ("buttons", "data"):
            raw = (data.get(name) or "").strip()
            if raw:
                body[name] = self._json(name, raw)
        if data.get("send_after"):
            body["send_after"] = data["send_after"].isoformat()
        for name in ("delayed_option", "delivery_time_of_day", "throttle_rate_per_minute"):
            if data.get(name) not in (None, ""):
                body[name] = data[name]
        return body

    @staticmethod
    def initial_from_body(body: dict) -> dict:
        """The inverse of ``body()``: prefill the form from a stored request (Duplicate)."""
        initial: dict[str, Any] = {}
        for name in ("headings", "contents", "filters", "buttons", "data"):
            if body.get(name) not in (None, "", [], {}):
                initial[name] = json.dumps(body[name])
        for name in ("included_segments", "excluded_segments", "big_picture", "url", "name"):
            if body.get(name):
                initial[name] = body[name]
        for name in ("delayed_option", "delivery_time_of_day", "throttle_rate_per_minute"):
            if body.get(name) not in (None, ""):
                initial[name] = body[name]
        attachments = body.get("ios_attachments")
        if isinstance(attachments, dict) and attachments:
            initial["ios_attachment"] = next(iter(attachments.values()))
        initial["platforms"] = [flag for flag, _label in PLATFORM_CHOICES if body.get(flag) is True]
        initial["audience"] = "filters" if "filters" in initial else "segments"
        return initial

    def test_player_ids(self) -> list[str]:
        players = Player.objects.filter(app=self.cleaned_data["app"], test_type__isnull=False)
        return [str(pk) for pk in players.values_list("pk", flat=True)]


def estimate(app: App, body: dict) -> int:
    """How many subscribed players the body would reach right now (same rules as the API)."""
    request = validate_notification(app=app, body=body, now=timezone.now())
    audience = resolve_audience(
        app=app, body=request.body, mode=request.mode, device_types=request.device_types
    )
    return estimated_recipients(audience.players)


def send(app: App, body: dict) -> dict:
    response, _replayed = notification_create(app=app, body=body, kind=Notification.Kind.DASHBOARD)
    return response


def api_error_text(error: ApiError) -> str:
    errors = error.body.get("errors")
    if isinstance(errors, list):
        return "; ".join(str(e) for e in errors)
    return json.dumps(error.body)
