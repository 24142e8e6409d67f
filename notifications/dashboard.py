"""Dashboard views for notifications: compose and send, audience estimate, live progress, actions.

They are mounted by ``NotificationAdmin.get_urls`` and go through the same services as the API.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.roles import acting_apps, can_act
from core.api.errors import ApiError
from notifications.compose import ComposeForm, api_error_text, estimate, send
from notifications.history import notification_history_start
from notifications.models import Notification
from notifications.services import notification_cancel
from segments.filters import RELATIONS


def compose_view(model_admin, request):
    apps = acting_apps(request.user)
    if not apps.exists():
        raise PermissionDenied
    initial = request.session.pop("herald_compose_initial", None) if request.method == "GET" else None
    form = ComposeForm(request.POST or None, apps=apps, initial=initial)
    if request.method == "POST" and form.is_valid():
        app = form.cleaned_data["app"]
        test_only = "_send_test" in request.POST
        try:
            body = form.body(test_players=form.test_player_ids() if test_only else None)
            response = send(app, body)
        except ApiError as error:
            form.add_error(None, api_error_text(error))
        except forms.ValidationError as error:  # JSON in a field that does not parse
            form.add_error(None, error)
        else:
            if not response.get("id"):
                form.add_error(None, "; ".join(response.get("errors") or ["No recipients"]))
            else:
                label = "Test notification" if test_only else "Notification"
                messages.success(request, f"{label} queued for {response['recipients']} recipients.")
                return redirect(reverse("admin:notifications_notification_change", args=[response["id"]]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "form": form,
        "title": "Send a notification",
        "estimate_url": reverse("admin:notifications_notification_estimate"),
        "filter_relations": RELATIONS,
    }
    return TemplateResponse(request, "admin/notifications/notification/compose.html", context)


def estimate_view(model_admin, request):
    """The audience estimate shown while composing: ``{"recipients": n}`` or ``{"error": "..."}``."""
    form = ComposeForm(request.POST or None, apps=acting_apps(request.user))
    if not form.is_valid():
        return JsonResponse({"error": "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items())})
    try:
        return JsonResponse({"recipients": estimate(form.cleaned_data["app"], form.body())})
    except ApiError as error:
        return JsonResponse({"error": api_error_text(error)})
    except forms.ValidationError as error:
        return JsonResponse({"error": "; ".join(m for ms in error.message_dict.values() for m in ms)})


def _notification(model_admin, request, object_id) -> Notification:
    return get_object_or_404(
        model_admin.get_queryset(request).select_related("app__organization"), pk=object_id
    )


def progress_view(model_admin, request, object_id):
    """Live delivery progress for the detail page (polled while the notification is sending)."""
    n = _notification(model_admin, request, object_id)
    done = n.successful + n.failed + n.errored
    return JsonResponse(
        {
            "status": n.status,
            "recipients": n.recipients,
            "done": done,
            "remaining": n.remaining,
            "successful": n.successful,
            "failed": n.failed,
            "errored": n.errored,
            "converted": n.converted,
            "completed": n.completed_at is not None or n.status in ("completed", "canceled"),
            "platforms": {
                stats.platform: {
                    "successful": stats.successful,
                    "failed": stats.failed,
                    "errored": stats.errored,
                    "converted": stats.converted,
                }
                for stats in n.platform_stats.order_by("platform")
            },
        }
    )


def _acting_notification(model_admin, request, object_id) -> Notification:
    if request.method != "POST":
        raise PermissionDenied
    n = _notification(model_admin, request, object_id)
    if not can_act(request.user, n.app.organization):
        raise PermissionDenied
    return n


def cancel_view(model_admin, request, object_id):
    n = _acting_notification(model_admin, request, object_id)
    try:
        notification_cancel(app=n.app, notification_id=str(n.pk))
        messages.success(request, "Notification canceled: batches not yet sent will not be sent.")
    except ApiError as error:
        messages.error(request, api_error_text(error))
    return redirect(reverse("admin:notifications_notification_change", args=[n.pk]))


def duplicate_view(model_admin, request, object_id):
    """Open the compose form prefilled with this notification's content and audience."""
    n = _acting_notification(model_admin, request, object_id)
    initial = ComposeForm.initial_from_body(n.request or {})
    initial.update(app=str(n.app_id), name=f"Copy of {n.name or n.pk}")
    request.session["herald_compose_initial"] = initial
    return redirect(reverse("admin:notifications_notification_compose"))


def export_view(model_admin, request, object_id, events):
    n = _acting_notification(model_admin, request, object_id)
    try:
        export = notification_history_start(
            app=n.app,
            notification_id=str(n.pk),
            events=events,
            email=None,
            url_base=request.build_absolute_uri("/").rstrip("/"),
        )
        messages.success(request, f"The {events} CSV is being prepared: {export.url}")
    except ApiError as error:
        messages.error(request, api_error_text(error))
    return redirect(reverse("admin:notifications_notification_change", args=[n.pk]))
