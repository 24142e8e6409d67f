from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.admin import OrganizationScopedAdmin
from apps.roles import acting_apps, can_act
from core.api.errors import ApiError
from notifications.compose import api_error_text, send
from notifications.models import Delivery
from players.export_services import csv_export_start
from players.import_services import csv_import_start
from players.imports import COLUMNS, REQUIRED_COLUMNS
from players.models import CsvExport, CsvImport, Player, Purchase

TEST_MESSAGE = "Test notification from Herald"


class DeliveryInline(admin.TabularInline):
    """The notifications this player was sent, newest first, and whether they were opened."""

    model = Delivery
    extra = 0
    can_delete = False
    max_num = 0
    verbose_name_plural = "Notifications received (latest 50)"
    fields = ["notification_link", "status", "error", "sent_at", "received_at", "opened_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("notification").order_by("-id")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.max_num = 50
        return formset

    @admin.display(description="notification")
    def notification_link(self, delivery):
        url = reverse("admin:notifications_notification_change", args=[delivery.notification_id])
        return format_html('<a href="{}">{}</a>', url, delivery.notification.name or delivery.notification_id)


class PurchaseInline(admin.TabularInline):
    model = Purchase
    extra = 0
    readonly_fields = ["sku", "amount", "iso", "imported", "created_at"]
    can_delete = False


class CsvImportForm(forms.Form):
    app = forms.ModelChoiceField(queryset=None, help_text="Players are added to, or updated in, this app.")
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "A CSV (or .csv.gz) with a header naming any of csv_export's columns; "
            f"{' and '.join(REQUIRED_COLUMNS)} are required. An export of another app can be imported as is."
        ),
    )

    def __init__(self, *args, apps, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].queryset = apps  # only apps the user may act on: never another tenant's


class SubscribedFilter(admin.SimpleListFilter):
    title = "subscription"
    parameter_name = "subscribed"

    def lookups(self, request, model_admin):
        return [("yes", "Subscribed"), ("no", "Unsubscribed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.subscribed()
        if self.value() == "no":
            return queryset.exclude(pk__in=queryset.subscribed().values("pk"))
        return queryset


@admin.register(Player)
class PlayerAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    list_display = [
        "id",
        "app",
        "device_type",
        "identifier_short",
        "external_user_id",
        "language",
        "country",
        "session_count",
        "last_active",
        "is_subscribed",
    ]
    list_filter = ["device_type", SubscribedFilter, "unsubscribed_reason", "language", "country", "app"]
    list_select_related = ["app"]
    search_fields = ["=id", "identifier", "=external_user_id"]
    show_full_result_count = False
    inlines = [PurchaseInline, DeliveryInline]
    readonly_fields = ["id", "created_at", "tags_pretty", "activity", "subscription_status"]
    change_form_template = "admin/players/player/change_form.html"
    change_list_template = "admin/players/player/change_list.html"

    @admin.display(description="tags")
    def tags_pretty(self, player):
        return format_html("<pre>{}</pre>", json.dumps(player.tags, indent=2, sort_keys=True))

    @admin.display(description="sessions")
    def activity(self, player):
        return (
            f"{player.session_count} sessions, {player.playtime} s played, "
            f"first seen {player.created_at:%Y-%m-%d %H:%M}, "
            f"last active {player.last_active:%Y-%m-%d %H:%M} UTC"
        )

    @admin.display(description="subscription")
    def subscription_status(self, player):
        if player.is_subscribed:
            return "Subscribed"
        reason = player.unsubscribed_reason or "opted out"
        return f"Unsubscribed ({reason}, notification_types {player.notification_types})"

    def has_delete_permission(self, request, obj=None):
        # GDPR erasure: owners and admins of the player's organization.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or can_act(request.user, obj.app.organization))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        player = self.get_object(request, object_id)
        can = player is not None and can_act(request.user, player.app.organization)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "can_act": can})

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("<uuid:object_id>/send-test/", view(self.send_test_view), name="players_player_send_test"),
            path(
                "<uuid:object_id>/export-app/", view(self.export_app_view), name="players_player_export_app"
            ),
            path("import-csv/", view(self.import_csv_view), name="players_player_import_csv"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import": acting_apps(request.user).exists()}
        return super().changelist_view(request, extra_context)

    def import_csv_view(self, request):
        """Upload a CSV of players into one of the user's apps (owners and admins only); the
        import runs in a worker and its page shows the progress."""
        apps = acting_apps(request.user).order_by("name")
        if not apps.exists():
            raise PermissionDenied
        form = CsvImportForm(request.POST or None, request.FILES or None, apps=apps)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = csv_import_start(
                    app=form.cleaned_data["app"],
                    chunks=upload.chunks(),
                    file_name=upload.name or "",
                    created_by=request.user,
                )
            except ApiError as error:
                form.add_error("file", api_error_text(error))
            else:
                messages.success(request, "Import started; its progress is shown here.")
                return redirect(reverse("admin:players_csvimport_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Import players from CSV",
            "columns": COLUMNS,
        }
        return TemplateResponse(request, "admin/players/player/import_csv.html", context)

    def _acting_player(self, request, object_id) -> Player:
        player = get_object_or_404(
            self.get_queryset(request).select_related("app__organization"), pk=object_id
        )
        if request.method != "POST" or not can_act(request.user, player.app.organization):
            raise PermissionDenied
        return player

    def send_test_view(self, request, object_id):
        player = self._acting_player(request, object_id)
        body = {
            "include_player_ids": [str(player.pk)],
            "contents": {"en": TEST_MESSAGE},
            "name": "Test notification",
        }
        if player.device_type == 11:
            body = {**body, "email_subject": TEST_MESSAGE, "email_body": f"<p>{TEST_MESSAGE}</p>"}
        try:
            response = send(player.app, body)
            if response.get("id"):
                messages.success(request, "Test notification queued.")
            else:
                messages.error(request, "; ".join(response.get("errors") or ["Not sent"]))
        except ApiError as error:
            messages.error(request, api_error_text(error))
        return redirect(reverse("admin:players_player_change", args=[player.pk]))

    def export_app_view(self, request, object_id):
        player = self._acting_player(request, object_id)
        try:
            export = csv_export_start(
                app=player.app,
                url_base=request.build_absolute_uri("/").rstrip("/"),
                extra_fields=[],
                last_active_since=None,
                segment_name=None,
            )
        except ApiError as error:
            messages.error(request, api_error_text(error))
            return redirect(reverse("admin:players_player_change", args=[player.pk]))
        messages.success(request, "Export started; its progress is shown here.")
        return redirect(reverse("admin:players_csvexport_change", args=[export.pk]))

    @admin.display(description="identifier")
    def identifier_short(self, player):
        value = player.identifier or ""
        return value if len(value) <= 40 else value[:37] + "…"

    @admin.display(boolean=True, description="subscribed")
    def is_subscribed(self, player):
        return player.is_subscribed


@admin.register(CsvExport)
class CsvExportAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    list_display = ["file_name", "app", "status", "row_count", "created_at", "expires_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in CsvExport._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CsvImport)
class CsvImportAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    list_display = [
        "created_at",
        "file_name",
        "app",
        "status",
        "rows_processed",
        "rows_created",
        "rows_updated",
        "rows_failed",
    ]
    list_filter = ["status"]
    list_select_related = ["app"]
    # The refused rows are shown as a table by the template; the stored path is internal.
    exclude = ["errors", "relative_path"]
    change_form_template = "admin/players/csvimport/change_form.html"

    def has_add_permission(self, request):
        return False  # imports start from "Import players from CSV" on the players list

    def has_change_permission(self, request, obj=None):
        return False  # a record of what happened: shown, never edited

    def has_delete_permission(self, request, obj=None):
        finished = obj is None or obj.status in (CsvImport.Status.COMPLETED, CsvImport.Status.FAILED)
        allowed = super().has_delete_permission(request, obj) and finished
        return allowed and (obj is None or can_act(request.user, obj.app.organization))
