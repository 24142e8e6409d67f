from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from apps.models import App, AppKey, Membership, Organization, UserKey
from apps.services import api_key_revoke, api_key_rotate, app_key_issue, user_key_issue


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see only their own organizations' rows."""

    organization_path = "organization"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_path}__members": request.user}).distinct()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Choosing an app or organization must not list (or accept) another tenant's.
        if not request.user.is_superuser and db_field.related_model in (App, Organization):
            path = "members" if db_field.related_model is Organization else "organization__members"
            kwargs["queryset"] = db_field.related_model.objects.filter(**{path: request.user}).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "memberships__organization"
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(members=request.user)


class KeyAdmin(OrganizationScopedAdmin):
    """Keys are created here with a label; the plaintext is shown once, in the success message."""

    list_display = ["label", "prefix", "owner", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys", "rotate_keys"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def show_once(self, request, plaintext: str, what: str) -> None:
        messages.warning(
            request,
            format_html(
                "{} created. Copy it now, it will not be shown again: <code>{}</code>", what, plaintext
            ),
        )

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(key=key)
        messages.success(request, "Keys revoked.")

    @admin.action(description="Rotate selected keys (revoke and issue a replacement)")
    def rotate_keys(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            _replacement, plaintext = api_key_rotate(key=key)
            self.show_once(request, plaintext, f"Replacement for {key.label or key.prefix}")


@admin.register(AppKey)
class AppKeyAdmin(KeyAdmin):
    organization_path = "app__organization"
    fields = ["app", "label", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["app"]
    search_fields = ["label", "prefix", "app__name"]
    autocomplete_fields = ["app"]

    @admin.display(description="app")
    def owner(self, key):
        return key.app

    def save_model(self, request, obj, form, change):
        key, plaintext = app_key_issue(app=obj.app, label=obj.label)
        obj.pk = key.pk
        self.show_once(request, plaintext, "App key")


@admin.register(UserKey)
class UserKeyAdmin(KeyAdmin):
    fields = ["organization", "label", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["organization"]
    search_fields = ["label", "prefix", "organization__name"]

    @admin.display(description="organization")
    def owner(self, key):
        return key.organization

    def save_model(self, request, obj, form, change):
        key, plaintext = user_key_issue(organization=obj.organization, label=obj.label)
        obj.pk = key.pk
        self.show_once(request, plaintext, "User key")


class AppKeyInline(admin.TabularInline):
    model = AppKey
    extra = 0
    fields = ["label", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(App)
class AppAdmin(OrganizationScopedAdmin):
    list_display = ["name", "id", "organization", "apns_env", "created_at"]
    list_filter = ["apns_env"]
    list_select_related = ["organization"]
    search_fields = ["name", "id"]
    inlines = [AppKeyInline]
    readonly_fields = [
        "id",
        "created_at",
        "updated_at",
        "apns_certificate_subject",
        "apns_certificate_expires_at",
        "fcm_project_id",
        "vapid_public_key",
        "configured_secrets",
    ]
    # Secrets are set through the API (validated there) and never displayed.
    exclude = App.SECRET_FIELDS

    @admin.display(description="Configured credentials")
    def configured_secrets(self, app):
        names = [name for name in App.SECRET_FIELDS if getattr(app, name)]
        return ", ".join(names) or "none"
