"""Outcomes (onesignal-api.md §3.5): the SDK's keyless measure calls and the App-key report."""

from __future__ import annotations

from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from core.api.base import AppKeyView, DeviceView
from core.api.schema_docs import ERROR_RESPONSES, SuccessSerializer
from notifications.api.serializers import (
    OutcomeMeasureInputSerializer,
    OutcomeMeasureSourcesInputSerializer,
    OutcomesOutputSerializer,
)
from notifications.outcomes import outcome_measure, outcome_measure_sources, outcome_values

APP_KEY = [{"app_key": []}]
DEVICE = [{"app_key": []}, {}]


def comma_list(params: QueryDict, name: str) -> list[str]:
    """Every comma-separated item of every ``name=`` in the query string, stripped, blanks dropped."""
    return [item.strip() for raw in params.getlist(name) for item in raw.split(",") if item.strip()]


def outcome_names_query(params: QueryDict) -> list[str]:
    """``outcome_names=a.count,b.sum`` and then the repeatable ``outcome_names[]=…`` form, which
    is the only way to ask for a name that contains a comma ("Sales, Purchase.count")."""
    repeated = [item.strip() for item in params.getlist("outcome_names[]") if item.strip()]
    return comma_list(params, "outcome_names") + repeated


class OutcomeMeasureView(DeviceView):
    """One outcome from the SDK (keyless); ``direct`` absent, true or false attributes it
    unattributed, direct or influenced."""

    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="measure_outcome",
        summary="Report an outcome (SDK)",
        auth=DEVICE,
        request=OutcomeMeasureInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES},
    )
    def post(self, request):
        outcome_measure(app=self.app, data=self.body)
        return Response({"success": True})


class OutcomeMeasureSourcesView(DeviceView):
    """One outcome from the SDK (keyless, outcomes v2), attributed from its ``sources``."""

    rate_limit_bucket = "players_write"

    @extend_schema(
        operation_id="measure_outcome_sources",
        summary="Report an outcome with its sources (SDK, outcomes v2)",
        auth=DEVICE,
        request=OutcomeMeasureSourcesInputSerializer,
        responses={200: SuccessSerializer, **ERROR_RESPONSES},
    )
    def post(self, request):
        outcome_measure_sources(app=self.app, data=self.body)
        return Response({"success": True})


class AppOutcomesView(AppKeyView):
    """Counts and sums of the app's outcomes over the last hour, day or 30 days."""

    rate_limit_bucket = "notifications_read"

    @extend_schema(
        operation_id="get_outcomes",
        summary="View outcomes",
        auth=APP_KEY,
        parameters=[
            OpenApiParameter(
                "outcome_names",
                str,
                description="Comma-separated <name>.<count|sum>, e.g. os__click.count,Purchase.sum "
                "(required unless outcome_names[] is given)",
            ),
            OpenApiParameter(
                "outcome_names[]", str, many=True, description="Repeatable form, for names with commas"
            ),
            OpenApiParameter("outcome_time_range", str, enum=["1h", "1d", "1mo"], description="Default 1h"),
            OpenApiParameter(
                "outcome_platforms", str, description="Comma-separated device types (0 to 14); default all"
            ),
            OpenApiParameter(
                "outcome_attribution",
                str,
                enum=["direct", "influenced", "unattributed", "total"],
                description="Default total (all three)",
            ),
        ],
        responses={200: OutcomesOutputSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, app_id: str):
        params = request.query_params
        outcomes = outcome_values(
            app=self.app,
            names=outcome_names_query(params),
            time_range=params.get("outcome_time_range", "").strip().lower(),
            platforms=comma_list(params, "outcome_platforms"),
            attribution=params.get("outcome_attribution", "").strip().lower(),
        )
        return Response({"outcomes": outcomes})
