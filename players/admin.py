from __future__ import annotations

from django.contrib import admin

from apps.admin import OrganizationScopedAdmin
from players.models import CsvExport, Player, Purchase


class PurchaseInline(admin.TabularInline):
    model = Purchase
    extra = 0
    readonly_fields = ["sku", "amount", "iso", "imported", "created_at"]
    can_delete = False


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
    inlines = [PurchaseInline]
    readonly_fields = ["id", "created_at"]

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
