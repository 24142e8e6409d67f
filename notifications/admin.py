from __future__ import annotations

from django.contrib import admin

from apps.admin import OrganizationScopedAdmin
from notifications.models import Notification, PlatformStats, Template


class PlatformStatsInline(admin.TabularInline):
    model = PlatformStats
    extra = 0
    can_delete = False
    readonly_fields = ["platform", "successful", "failed", "errored", "converted", "received"]

    def has_add_permission(self, request, obj=None):
        return False


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
    inlines = [PlatformStatsInline]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Template)
class TemplateAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    list_display = ["name", "id", "app", "created_at"]
    search_fields = ["name", "=id"]
