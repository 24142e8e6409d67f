"""Dashboard pages for event webhooks: configure them, send a test event, read the delivery log.

Scoped like every dashboard page: staff see the webhooks of their organizations' apps only, and
only owners and admins (not viewers) may add, change, delete, test or rotate. The signing
secret is write-only: a generated one is shown once, in a message, when a webhook is created or
its secret rotated; a typed one is never rendered back.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.admin import OrganizationScopedAdmin
from apps.roles import acting_apps, can_act
from webhooks.events import MFP_EVENTS, ONESIGNAL_EVENTS
from webhooks.models import Webhook, WebhookCall, new_secret
from webhooks.services import (
    MAX_SECRET_LENGTH,
    MIN_SECRET_LENGTH,
    WebhookInvalid,
    webhook_send_test,
    webhook_url_check,
)

LOG_ROWS = 25
EVENTS_BY_SOURCE = {Webhook.Source.MFP: MFP_EVENTS, Webhook.Source.ONESIGNAL: ONESIGNAL_EVENTS}


class WebhookForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[
            ("OneSignal API", [(e, e) for e in ONESIGNAL_EVENTS]),
            ("MobileFirst (/imfpush)", [(e, e) for e in MFP_EVENTS]),
        ],
        widget=forms.CheckboxSelectMultiple,
        help_text="The events sent to this URL; they must belong to the webhook's API (source).",
    )
    new_secret = forms.CharField(
        required=False,
        strip=False,
        label="Signing secret",
        widget=forms.PasswordInput(render_value=False),
        help_text=f"Optional, {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters. Leave blank to keep "
        "the current secret (or, for a new webhook, to have one generated and shown once).",
    )

    class Meta:
        model = Webhook
        fields = ["app", "source", "name", "url", "event_types"]
        help_texts = {
            "url": "http or https. Loopback, private and link-local addresses are refused unless "
            "HERALD_ALLOWED_PRIVATE_NETWORKS allows them.",
        }

    def clean_url(self):
        try:
            return webhook_url_check(self.cleaned_data.get("url"))
        except WebhookInvalid as exc:
            raise ValidationError(exc.reason) from exc

    def clean_new_secret(self):
        value = self.cleaned_data.get("new_secret") or ""
        if value and not (MIN_SECRET_LENGTH <= len(value) <= MAX_SECRET_LENGTH):
            raise ValidationError(f"Use {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters.")
        return value

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("source") or getattr(self.instance, "source", None)
        allowed = EVENTS_BY_SOURCE.get(source, ())
        wrong = [event for event in cleaned.get("event_types") or [] if event not in allowed]
        if wrong:
            self.add_error("event_types", f"Not an event of this webhook's API: {', '.join(wrong)}")
        return cleaned


class WebhookAdmin(OrganizationScopedAdmin):
    form = WebhookForm
    organization_path = "app__organization"
    list_display = ["name", "app", "source", "url", "events", "created_at"]
    list_filter = ["source"]
    list_select_related = ["app"]
    search_fields = ["name", "url", "app__name"]
    actions = ["send_test_event", "rotate_secrets"]

    def get_fields(self, request, obj=None):
        fields = ["app", "source", "name", "url", "event_types", "new_secret"]
        return fields if obj is None else [*fields, "created_at", "updated_at", "delivery_log"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The name is MFP's immutable webhookName; app and source fix which API owns it. (Viewers
        # get no change permission, so every field is read-only for them.)
        return ["app", "source", "name", "created_at", "updated_at", "delivery_log"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "app":  # only apps the user may act on
            kwargs["queryset"] = acting_apps(request.user)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _acts(self, request, obj) -> bool:
        return obj is None or can_act(request.user, obj.app.organization)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._acts(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._acts(request, obj)

    @admin.display(description="events")
    def events(self, webhook: Webhook) -> str:
        return ", ".join(webhook.event_types)

    @admin.display(description="delivery log (latest calls)")
    def delivery_log(self, webhook: Webhook):
        calls = list(webhook.calls.order_by("-created_at", "-id")[:LOG_ROWS])
        if not calls:
            return "No calls yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(call.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    call.event_type,
                    call.get_status_display(),
                    call.attempts,
                    call.last_status_code or "",
                    call.last_error,
                )
                for call in calls
            ),
        )
        return format_html(
            "<table><thead><tr><th>created</th><th>event</th><th>status</th><th>attempts</th>"
            "<th>last HTTP status</th><th>last error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def save_model(self, request, obj, form, change):
        typed = form.cleaned_data.get("new_secret")
        generated = not change and not typed
        if typed:
            obj.secret = typed
        elif generated:
            obj.secret = new_secret()
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        if generated:
            self._show_secret(request, obj)

    def _show_secret(self, request, webhook: Webhook) -> None:
        messages.warning(
            request,
            format_html(
                "Signing secret of {}. Copy it now, it will not be shown again: <code>{}</code>",
                webhook.name,
                webhook.secret,
            ),
        )

    def _acting_only(self, request, queryset):
        return queryset.filter(app__in=acting_apps(request.user))

    @admin.action(description="Send a test event to the selected webhooks")
    def send_test_event(self, request, queryset):
        sent = [webhook_send_test(webhook=webhook) for webhook in self._acting_only(request, queryset)]
        messages.success(request, f"Test event queued for {len(sent)} webhook(s); see each delivery log.")

    @admin.action(description="Rotate the signing secret of the selected webhooks")
    def rotate_secrets(self, request, queryset):
        for webhook in self._acting_only(request, queryset):
            webhook.secret = new_secret()
            webhook.updated_at = timezone.now()
            webhook.save(update_fields=["secret", "updated_at"])
            self._show_secret(request, webhook)


class WebhookCallAdmin(OrganizationScopedAdmin):
    """The delivery log across webhooks: read-only."""

    organization_path = "webhook__app__organization"
    list_display = [
        "created_at",
        "webhook",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
    ]
    list_filter = ["status", "event_type"]
    list_select_related = ["webhook"]
    search_fields = ["webhook__name", "event_type"]
    fields = [
        "webhook",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "payload",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(Webhook, WebhookAdmin)
admin.site.register(WebhookCall, WebhookCallAdmin)
