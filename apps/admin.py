from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.charts import sends_chart
from apps.credential_forms import PlatformCredentialsForm
from apps.credentials import certificate_status, check_adm_client_id, check_client_secret, check_huawei_app_id
from apps.member_admin import MembershipInline, member_add_view
from apps.members import roles_grantable_by
from apps.models import App, AppKey, Membership, Organization, UserKey
from apps.overview import app_overview
from apps.roles import ACTING_ROLES, acting_apps, can_act
from apps.services import api_key_revoke, api_key_rotate, app_key_issue, app_update, user_key_issue
from core.api import limits
from core.api.errors import ApiError


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers see only their own organizations' rows, and change, add or
    delete only as owners or admins of the row's organization: viewers only look (apps/roles.py).
    """

    organization_path = "organization"
    # JSON textareas (segment filters, template fields) refuse deep nesting with a form error.
    formfield_overrides = {models.JSONField: {"form_class": limits.JSONFormField}}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_path}__members": request.user}).distinct()

    def organization_of(self, obj) -> Organization:
        for name in self.organization_path.split("__"):
            obj = getattr(obj, name)
        return obj

    def _may_act(self, request, obj=None) -> bool:
        """Owner or admin of ``obj``'s organization; without ``obj``, of any organization (the
        changelist then offers changes, and each object is checked again)."""
        if request.user.is_superuser:
            return True
        if obj is None:
            # Asked for every model on every page (the sidebar's permissions): once per request.
            if not hasattr(request, "_herald_acts_anywhere"):
                acting = Membership.objects.filter(user=request.user, role__in=ACTING_ROLES).exists()
                request._herald_acts_anywhere = acting
            return request._herald_acts_anywhere
        return can_act(request.user, self.organization_of(obj))

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self._may_act(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_act(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_act(request, obj)

    def get_list_filter(self, request):
        # A plain related-field filter lists every row of the related model: every tenant's apps.
        # RelatedOnlyFieldListFilter lists only those the rows this user may see point at.
        return [
            (item, admin.RelatedOnlyFieldListFilter)
            if isinstance(item, str) and getattr(self._filter_field(item), "is_relation", False)
            else item
            for item in super().get_list_filter(request)
        ]

    def _filter_field(self, path: str):
        model, field = self.model, None
        for name in path.split("__"):
            field = model._meta.get_field(name)
            model = field.related_model
            if model is None:
                break
        return field

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Choosing an app or organization must not list (or accept) another tenant's.
        if not request.user.is_superuser and db_field.related_model in (App, Organization):
            path = "members" if db_field.related_model is Organization else "organization__members"
            kwargs["queryset"] = db_field.related_model.objects.filter(**{path: request.user}).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "memberships__organization"
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(members=request.user)

    def organization_of(self, obj) -> Organization:
        return obj

    def get_urls(self):
        add_member = self.admin_site.admin_view(partial(member_add_view, self))
        return [
            path("<uuid:object_id>/members/add/", add_member, name="apps_organization_add_member"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        organization = self.get_object(request, object_id)
        can_add = organization is not None and bool(roles_grantable_by(request.user, organization))
        extra_context = {**(extra_context or {}), "can_add_member": can_add}
        return super().change_view(request, object_id, form_url, extra_context)


class KeyAdmin(OrganizationScopedAdmin):
    """Keys are created here with a label; the plaintext is shown once, in the success message."""

    list_display = ["label", "prefix", "owner", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys", "rotate_keys"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def get_queryset(self, request):
        # Viewers see no keys at all, not even prefixes: only owners and admins manage them.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(
            **{
                f"{self.organization_path}__memberships__user": request.user,
                f"{self.organization_path}__memberships__role__in": ACTING_ROLES,
            }
        ).distinct()

    def has_add_permission(self, request):
        return super().has_add_permission(request) and (
            request.user.is_superuser or acting_apps(request.user).exists()
        )

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

    def has_view_permission(self, request, obj=None):
        return obj is not None and can_act(request.user, obj.organization)


def _checked(check, *args):
    """Run one of apps.credentials' checks, turning its API error into a form error."""
    try:
        return check(*args)
    except ApiError as error:
        raise ValidationError(error.body["errors"][0]) from error


# Client secrets that staff may type into the dashboard: write-only, like the API.
ADMIN_WRITE_ONLY_SECRETS = ("huawei_app_secret", "adm_client_secret")


class AppAdminForm(forms.ModelForm):
    """Huawei and ADM client secrets can be typed here: write-only (never rendered back), and left
    blank to keep the stored one. Other secrets are uploaded through the API, which validates them.
    The admin builds the Meta (every field but AppAdmin.exclude)."""

    huawei_app_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Huawei Push Kit App Secret. Leave blank to keep the current one.",
    )
    adm_client_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Amazon Device Messaging client secret. Leave blank to keep the current one.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ADMIN_WRITE_ONLY_SECRETS:
            self.initial[name] = ""  # never send a stored secret to the browser

    def clean_huawei_app_id(self):
        value = (self.cleaned_data.get("huawei_app_id") or "").strip()
        return _checked(check_huawei_app_id, value) if value else None

    def clean_adm_client_id(self):
        value = (self.cleaned_data.get("adm_client_id") or "").strip()
        return _checked(check_adm_client_id, value) if value else None

    def _clean_secret(self, name: str):
        value = self.cleaned_data.get(name) or ""
        if not value:
            # Blank keeps what is stored (the form never shows it, so blank is the normal case).
            return getattr(self.instance, name) if self.instance.pk else None
        return _checked(check_client_secret, name, value)

    def clean_huawei_app_secret(self):
        return self._clean_secret("huawei_app_secret")

    def clean_adm_client_secret(self):
        return self._clean_secret("adm_client_secret")


@admin.register(App)
class AppAdmin(OrganizationScopedAdmin):
    form = AppAdminForm
    list_display = [
        "name",
        "id",
        "organization",
        "apns_env",
        "apns_certificate_status",
        "created_at",
        "overview_link",
    ]
    list_filter = ["apns_env"]
    list_select_related = ["organization"]
    search_fields = ["name", "id"]
    ordering = ["name"]  # stable pages, also in the app autocomplete of App keys
    inlines = [AppKeyInline]
    readonly_fields = [
        "id",
        "created_at",
        "updated_at",
        "apns_certificate_subject",
        "apns_certificate_expires_at",
        "apns_certificate_status",
        "safari_push_id",
        "fcm_project_id",
        "vapid_public_key",
        "configured_secrets",
    ]
    # Secrets are never displayed. Most are set through the API (validated there); the Huawei and
    # ADM client secrets can also be typed into AppAdminForm's write-only fields.
    exclude = [name for name in App.SECRET_FIELDS if name not in ADMIN_WRITE_ONLY_SECRETS]

    @admin.display(description="APNs certificate")
    def apns_certificate_status(self, app):
        status = certificate_status(app.apns_certificate_expires_at)
        if status is None:
            return "no certificate"
        return format_html('<strong style="color:{}">{}</strong>', status.color, status.text)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        app = self.get_object(request, object_id)
        if app is not None and request.method == "GET":
            for label, expires in (
                ("APNs", app.apns_certificate_expires_at),
                ("Safari", app.safari_apns_certificate_expires_at),
            ):
                status = certificate_status(expires)
                if status is not None and status.warn:
                    messages.warning(request, f"{label} certificate: {status.text}")
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        overview = self.admin_site.admin_view(self.overview_view)
        credentials = self.admin_site.admin_view(self.credentials_view)
        return [
            path("<uuid:object_id>/overview/", overview, name="apps_app_overview"),
            path("<uuid:object_id>/credentials/", credentials, name="apps_app_credentials"),
            *super().get_urls(),
        ]

    def credentials_view(self, request, object_id):
        """Upload platform credentials, validated exactly as ``PUT /apps/{id}`` validates them."""
        app = get_object_or_404(self.get_queryset(request), pk=object_id)  # tenant-scoped
        if not can_act(request.user, app.organization):
            raise PermissionDenied
        form = PlatformCredentialsForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                data = form.api_data()
                if data:
                    app_update(app=app, data=data)
                    messages.success(request, "Saved: " + ", ".join(sorted(data)) + ".")
                    return redirect(reverse("admin:apps_app_credentials", args=[app.pk]))
                form.add_error(None, "Nothing to save: every field was blank.")
            except ApiError as error:
                form.add_error(None, error.body["errors"][0])
            except ValidationError as error:
                form.add_error(None, error)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "app": app,
            "form": form,
            "configured": self.configured_secrets(app),
            "certificate": self.apns_certificate_status(app),
        }
        return TemplateResponse(request, "admin/apps/app/credentials.html", context)

    def overview_view(self, request, object_id):
        """The app's dashboard: audience, activity, 30 days of sends, CTR, unsubscribes."""
        app = get_object_or_404(self.get_queryset(request), pk=object_id)  # tenant-scoped
        if not self.has_view_permission(request, app):
            raise PermissionDenied
        overview = app_overview(app)
        ctr = overview.click_through_rate
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "app": app,
            "overview": overview,
            "subscribed_total": sum(count for _platform, count in overview.subscribed_by_platform),
            "ctr": None if ctr is None else ctr * 100,
            "chart": sends_chart(overview.days),
        }
        return TemplateResponse(request, "admin/apps/app/overview.html", context)

    @admin.display(description="Dashboard")
    def overview_link(self, app):
        return format_html(
            '<a href="{}">Overview</a> · <a href="{}">Credentials</a>',
            reverse("admin:apps_app_overview", args=[app.pk]),
            reverse("admin:apps_app_credentials", args=[app.pk]),
        )

    @admin.display(description="Configured credentials")
    def configured_secrets(self, app):
        names = [name for name in App.SECRET_FIELDS if getattr(app, name)]
        return ", ".join(names) or "none"
