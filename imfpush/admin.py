"""Dashboard pages for /imfpush: confidential clients, MobileFirst application ids, tags.

Confidential clients are credentials, handled like App keys: only owners and admins of their
organization see them, a new client's secret (or a rotated one) is shown once, in a message,
and only its hash is kept (django-oauth-toolkit). django-oauth-toolkit registers admin pages of
its own for every application and token of the installation; those are removed here, because
they are not scoped to an organization.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.html import format_html
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from apps.admin import OrganizationScopedAdmin
from apps.models import Organization
from apps.roles import ACTING_ROLES, acting_apps, can_act
from imfpush.clients import confidential_client_create, confidential_client_rotate_secret
from imfpush.errors import MfpError
from imfpush.models import CLIENT_ID_PATTERN, ConfidentialClient, MfpApplication, Tag
from imfpush.services import mfp_application_assign

for _model in (
    ConfidentialClient,
    get_access_token_model(),
    get_grant_model(),
    get_id_token_model(),
    get_refresh_token_model(),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

SCOPE_PATTERN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces
ALLOWED_SCOPE_HELP = (
    "Space-separated scope patterns the client may request; * matches any characters. "
    "A sending back end: 'messages.write push.application.com.acme.shop'. An administration tool: "
    "'*.read *.write push.application.*'. A bare * allows every scope. Narrowing this invalidates "
    "the client's tokens at their next use."
)


def _acting_organizations(user):
    if user.is_superuser:
        return Organization.objects.all()
    return Organization.objects.filter(memberships__user=user, memberships__role__in=ACTING_ROLES).distinct()


class ConfidentialClientForm(forms.ModelForm):
    allowed_scope = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), help_text=ALLOWED_SCOPE_HELP
    )

    class Meta:
        model = ConfidentialClient
        fields = ["organization", "client_id", "name", "allowed_scope"]
        labels = {"client_id": "Client id", "name": "Display name"}
        help_texts = {
            "client_id": "The id sent with HTTP Basic to /mfp/api/az/v1/token: 1 to 255 of "
            "A-Z a-z 0-9 . _ ~ -, unique across the installation.",
        }

    def clean_client_id(self):
        value = (self.cleaned_data.get("client_id") or "").strip()
        if not CLIENT_ID_PATTERN.fullmatch(value):
            raise ValidationError("Use 1 to 255 of A-Z a-z 0-9 . _ ~ -")
        return value

    def clean_allowed_scope(self):
        patterns = (self.cleaned_data.get("allowed_scope") or "").split()
        if not patterns:
            raise ValidationError("List at least one scope pattern (a bare * allows every scope).")
        for pattern in patterns:
            if not SCOPE_PATTERN.fullmatch(pattern) or len(pattern) > 300:
                raise ValidationError(f"Not a scope pattern: {pattern[:40]!r}")
        return " ".join(patterns)


@admin.register(ConfidentialClient)
class ConfidentialClientAdmin(OrganizationScopedAdmin):
    """OAuth confidential clients of /imfpush/v1; the secret is shown once, when created or rotated."""

    form = ConfidentialClientForm
    list_display = ["client_id", "name", "organization", "allowed_scope", "created"]
    list_select_related = ["organization"]
    search_fields = ["client_id", "name"]
    readonly_fields = ["created", "updated"]
    actions = ["rotate_secrets"]

    def get_queryset(self, request):
        # Credentials: viewers see none, as with App keys.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(organization__in=_acting_organizations(request.user))

    def get_fields(self, request, obj=None):
        fields = ["organization", "client_id", "name", "allowed_scope"]
        return fields if obj is None else [*fields, "created", "updated"]

    def get_readonly_fields(self, request, obj=None):
        # The id names the tenant and is what tokens were issued to: fixed once created.
        return ["created", "updated"] if obj is None else ["organization", "client_id", "created", "updated"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":  # only organizations the user owns or administers
            kwargs["queryset"] = _acting_organizations(request.user)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and _acting_organizations(request.user).exists()

    def show_once(self, request, client: ConfidentialClient, secret: str, what: str) -> None:
        messages.warning(
            request,
            format_html(
                "{} for client <code>{}</code>. Copy the secret now, it will not be shown again: "
                "<code>{}</code>",
                what,
                client.client_id,
                secret,
            ),
        )

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        client, secret = confidential_client_create(
            organization=obj.organization,
            client_id=obj.client_id,
            allowed_scope=obj.allowed_scope,
            display_name=obj.name,
        )
        obj.pk = client.pk
        self.show_once(request, client, secret, "Client created")

    @admin.action(description="Rotate the secret of selected clients (their tokens stop working)")
    def rotate_secrets(self, request, queryset):
        for client in queryset:
            secret = confidential_client_rotate_secret(client=client)
            self.show_once(request, client, secret, "New secret")


class MfpApplicationForm(forms.ModelForm):
    class Meta:
        model = MfpApplication
        fields = ["app", "application_id", "enabled"]
        labels = {"application_id": "MobileFirst applicationId"}
        help_texts = {
            "application_id": "A bundle id or package name, e.g. com.acme.shop: tokens name it in "
            "push.application.<applicationId>. Fixed once set.",
        }

    def clean(self):
        cleaned = super().clean()
        app, application_id = cleaned.get("app"), cleaned.get("application_id")
        if self.instance.pk is None and app is not None and application_id:
            if MfpApplication.objects.filter(app=app).exists():
                raise ValidationError({"app": "This app already has a MobileFirst applicationId."})
            taken = MfpApplication.objects.filter(
                organization_id=app.organization_id, application_id=application_id
            ).exists()
            if taken:
                raise ValidationError({"application_id": "Another app of the organization uses this id."})
        return cleaned

    def _post_clean(self):
        # ``organization`` is not a form field: it is the app's, set before the model validates.
        if self.cleaned_data.get("app") is not None:
            self.instance.organization_id = self.cleaned_data["app"].organization_id
        super()._post_clean()


@admin.register(MfpApplication)
class MfpApplicationAdmin(OrganizationScopedAdmin):
    """An App's MobileFirst applicationId and enabled flag (sends to a disabled one are refused)."""

    form = MfpApplicationForm
    list_display = ["application_id", "app", "organization", "enabled", "created_at"]
    list_filter = ["enabled"]
    list_select_related = ["app", "organization"]
    search_fields = ["application_id", "app__name"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at"] if obj is None else ["app", "application_id", "created_at"]

    def get_fields(self, request, obj=None):
        return ["app", "application_id", "enabled"] + ([] if obj is None else ["created_at"])

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "app":  # only apps the user may act on (owner or admin)
            kwargs["queryset"] = acting_apps(request.user)
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and acting_apps(request.user).exists()

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can_act(request.user, obj.organization))

    def has_delete_permission(self, request, obj=None):
        return False  # DELETE /imfpush/v1/apps/{id} deletes the App itself; here nothing is removed

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["enabled"])
            return
        try:
            record = mfp_application_assign(
                app=obj.app, application_id=obj.application_id, enabled=obj.enabled
            )
        except MfpError as error:  # a concurrent assignment: the form checked before
            raise ValidationError(error.body()["message"]) from error
        obj.pk = record.pk


@admin.register(Tag)
class TagAdmin(OrganizationScopedAdmin):
    """Read-only: tags are created, changed and deleted through /imfpush/v1 (``tags.write``)."""

    organization_path = "app__organization"
    list_display = ["name", "app", "description", "subscriber_count", "created_at"]
    list_select_related = ["app"]
    search_fields = ["name", "description", "app__name"]
    fields = ["app", "name", "description", "created_mode", "created_at", "updated_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subscribers=Count("subscriptions"))

    @admin.display(description="subscriptions", ordering="subscribers")
    def subscriber_count(self, tag):
        return tag.subscribers

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
