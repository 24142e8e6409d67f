"""The organization page's members: owners and admins add staff accounts and change roles there.

Tenant staff never pick from the site's user list (that would list every tenant's users): they
create the account, with a password they hand over. Superusers keep Django's user picker.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.members import member_create, roles_grantable_by
from apps.models import Membership


class MembershipInline(admin.TabularInline):
    """Members and their roles. Superusers add existing users here; tenant staff add members on
    the "Add a member" page, and change only roles they may grant (owners: any; admins: not owner)."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return []
        if obj is not None and Membership.Role.OWNER in roles_grantable_by(request.user, obj):
            return ["user"]
        return ["user", "role"]

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        return obj is not None and Membership.Role.OWNER in roles_grantable_by(request.user, obj)


class MemberCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField()
    role = forms.ChoiceField(choices=())
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, roles: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        choices = Membership.Role.choices
        self.fields["role"].choices = [(value, label) for value, label in choices if value in roles]

    def clean_username(self):
        username = self.cleaned_data["username"]
        get_user_model().username_validator(username)
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("This user name is taken.")
        return username

    def clean(self):
        data = super().clean()
        if data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            user = get_user_model()(username=data.get("username", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(data["password1"], user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


def member_add_view(model_admin, request, object_id):
    organization = get_object_or_404(model_admin.get_queryset(request), pk=object_id)  # tenant-scoped
    roles = roles_grantable_by(request.user, organization)
    if not roles:
        raise PermissionDenied
    form = MemberCreateForm(request.POST or None, roles=roles)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        member_create(
            organization=organization,
            username=data["username"],
            email=data["email"],
            password=data["password1"],
            role=data["role"],
        )
        messages.success(request, f"{data['username']} can now log in as {data['role']} of {organization}.")
        return redirect(reverse("admin:apps_organization_change", args=[organization.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "organization": organization,
        "form": form,
        "title": f"Add a member to {organization}",
    }
    return TemplateResponse(request, "admin/apps/organization/add_member.html", context)
