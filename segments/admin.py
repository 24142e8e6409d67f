from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.http import JsonResponse
from django.urls import path

from apps.admin import OrganizationScopedAdmin
from apps.models import App
from core.api import limits
from players.models import Player
from segments.filters import RELATIONS, FilterError, compile_filters, validate_filters
from segments.models import BUILTIN_SEGMENTS, RESERVED_NAMES, Segment
from segments.selectors import SUBSCRIBED, subscriber_count


def _visible_apps(user):
    return (
        App.objects.all() if user.is_superuser else App.objects.filter(organization__members=user).distinct()
    )


class SegmentForm(forms.ModelForm):
    """The same rules as the API: 1 to 200 valid filters, stored normalised; no built-in name."""

    class Meta:
        model = Segment
        fields = ["app", "name", "description", "filters", "is_active"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if name in RESERVED_NAMES:
            raise forms.ValidationError("This name belongs to a built-in segment.")
        return name

    def clean_filters(self):
        filters = self.cleaned_data["filters"]
        if not filters:
            raise forms.ValidationError("A segment needs at least one filter.")
        try:
            return validate_filters(filters)
        except FilterError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(Segment)
class SegmentAdmin(OrganizationScopedAdmin):
    organization_path = "app__organization"
    form = SegmentForm
    list_display = ["name", "app", "source", "read_only", "is_active", "subscribers", "created_at"]
    readonly_fields = ["subscribers"]
    change_form_template = "admin/segments/segment/change_form.html"
    list_filter = ["source", "is_active"]
    list_select_related = ["app"]
    search_fields = ["name", "=id"]

    @admin.display(description="Subscribed players")
    def subscribers(self, segment):
        return subscriber_count(app=segment.app, segment=segment) if segment.pk else "-"

    def changelist_view(self, request, extra_context=None):
        """The built-in segments are listed above the custom ones, with their live counts."""
        builtins = [
            (app, builtin.name, subscriber_count(app=app, segment=builtin))
            for app in _visible_apps(request.user).order_by("name")[:20]
            for builtin in BUILTIN_SEGMENTS
        ]
        return super().changelist_view(request, {**(extra_context or {}), "builtin_counts": builtins})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "filter_relations": RELATIONS}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        count = self.admin_site.admin_view(self.count_view)
        return [path("count/", count, name="segments_segment_count"), *super().get_urls()]

    def count_view(self, request):
        """Live subscriber count of the filters being edited: ``{"subscribers": n}`` or an error."""
        app = _visible_apps(request.user).filter(pk=request.POST.get("app") or None).first()
        if app is None:
            return JsonResponse({"error": "Choose an app."})
        try:
            filters = validate_filters(limits.loads(request.POST.get("filters") or "[]"))
            condition = compile_filters(filters)
        except (json.JSONDecodeError, FilterError) as error:
            return JsonResponse({"error": getattr(error, "message", None) or str(error)})
        return JsonResponse(
            {"subscribers": Player.objects.filter(app=app).filter(SUBSCRIBED).filter(condition).count()}
        )
