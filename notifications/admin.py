from __future__ import annotations

from functools import partial

from django.contrib import admin
from django.urls import path

from apps.admin import OrganizationScopedAdmin
from apps.roles import acting_apps, can_act
from notifications import dashboard
from notifications.models import Notification, Template
from notifications.selectors import notification_outcomes


@admin.register(Notification)
class NotificationAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    list_display = [
        "id",
        "app",
        "name",
        "status",
        "recipients",
        "successful",
        "failed",
        "errored",
        "remaining",
        "queued_at",
        "completed_at",
    ]
    list_filter = ["status", "kind", "channel"]
    list_select_related = ["app"]
    search_fields = ["=id", "name"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False  # sending goes through the compose view, which uses the API's service

    def get_urls(self):
        def view(function, **kwargs):
            return self.admin_site.admin_view(partial(function, self, **kwargs))

        name = "notifications_notification"
        return [
            path("compose/", view(dashboard.compose_view), name=f"{name}_compose"),
            path("compose/estimate/", view(dashboard.estimate_view), name=f"{name}_estimate"),
            path("<uuid:object_id>/progress/", view(dashboard.progress_view), name=f"{name}_progress"),
            path("<uuid:object_id>/cancel/", view(dashboard.cancel_view), name=f"{name}_cancel"),
            path("<uuid:object_id>/duplicate/", view(dashboard.duplicate_view), name=f"{name}_duplicate"),
            path(
                "<uuid:object_id>/export/sent/",
                view(dashboard.export_view, events="sent"),
                name=f"{name}_export_sent",
            ),
            path(
                "<uuid:object_id>/export/clicked/",
                view(dashboard.export_view, events="clicked"),
                name=f"{name}_export_clicked",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_send": acting_apps(request.user).exists()}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        notification = self.get_object(request, object_id)
        can = notification is not None and can_act(request.user, notification.app.organization)
        outcomes = notification_outcomes(notification) if notification is not None else []
        platforms = notification.platform_stats.order_by("platform") if notification is not None else []
        extra_context = {
            **(extra_context or {}),
            "can_act": can,
            "outcomes": outcomes,
            "platforms": platforms,
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Template)
class TemplateAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    list_display = ["name", "id", "app", "created_at"]
    search_fields = ["name", "=id"]
