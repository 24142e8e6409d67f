from __future__ import annotations

from django import forms
from django.contrib import admin

from apps.admin import OrganizationScopedAdmin
from segments.filters import FilterError, validate_filters
from segments.models import RESERVED_NAMES, Segment


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
    list_display = ["name", "app", "source", "read_only", "is_active", "created_at"]
    list_filter = ["source", "is_active"]
    list_select_related = ["app"]
    search_fields = ["name", "=id"]
