"""Writes to segments. Failures use the ``{"success": false, "errors": [...]}`` shape (§2.1)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from apps.models import App
from core.api.errors import ApiError
from segments.filters import FilterError, validate_filters
from segments.models import BUILTIN_SEGMENTS, RESERVED_NAMES, BuiltinSegment, Segment
from segments.selectors import USER_BASED_SEGMENT, AnySegment, is_user_based

NAME_REQUIRED = "name is required"
ID_EXISTS = "Segment with the given id already exists."
NAME_EXISTS = "Segment with the given name already exists."
READ_ONLY = "This segment is read-only"
FILTERS_REQUIRED = "Invalid filter: filters must contain at least one filter"

UNSET: Any = object()


def segment_error(status: int, message: str) -> ApiError:
    return ApiError(status, {"success": False, "errors": [message]})


def _checked_filters(filters: Any) -> list[dict]:
    """Segments need 1 to 200 entries (§6.3); the list is stored normalised."""
    if filters is None or filters == []:
        raise segment_error(400, FILTERS_REQUIRED)
    try:
        return validate_filters(filters)
    except FilterError as exc:
        raise segment_error(400, exc.message) from exc


def _check_name_free(*, app: App, name: str, exclude_id: uuid.UUID | None = None) -> None:
    taken = Segment.objects.filter(app=app, name=name).exclude(pk=exclude_id)
    if name in RESERVED_NAMES or taken.exists():
        raise segment_error(409, NAME_EXISTS)


def _check_writable(segment: AnySegment) -> Segment:
    if isinstance(segment, BuiltinSegment) or segment.read_only:
        raise segment_error(403, READ_ONLY)
    return segment


@transaction.atomic
def segment_create(
    *,
    app: App,
    name: str,
    filters: Any,
    description: str | None = None,
    segment_id: uuid.UUID | None = None,
) -> Segment:
    """A custom segment. POST never updates: a taken id or name is a 409 (§3.4).

    Steps: filters checked and normalised (400) → name not taken by a built-in or a custom
    segment (409) → id not taken (409; ids are global, and built-in ids count) → insert, where a
    concurrent insert of the same name or id still ends as the same 409.
    """
    normalised = _checked_filters(filters)
    _check_name_free(app=app, name=name)
    if segment_id is not None:
        builtin_ids = {builtin.segment_id(app.id) for builtin in BUILTIN_SEGMENTS}
        if segment_id in builtin_ids or Segment.objects.filter(pk=segment_id).exists():
            raise segment_error(409, ID_EXISTS)
    try:
        with transaction.atomic():
            return Segment.objects.create(
                id=segment_id or uuid.uuid4(),
                app=app,
                name=name,
                description=description or None,
                filters=normalised,
                source=Segment.Source.CUSTOM,
            )
    except IntegrityError as exc:
        if segment_id is not None and Segment.objects.filter(pk=segment_id).exists():
            raise segment_error(409, ID_EXISTS) from exc
        raise segment_error(409, NAME_EXISTS) from exc


@transaction.atomic
def segment_update(
    *, app: App, segment: AnySegment, name: str, description: Any = UNSET, filters: Any = UNSET
) -> Segment:
    """PATCH: ``name`` is required; ``description`` "" clears it; ``filters`` replaces them all.

    Built-in and read-only segments are 403. A stored list with user-based filters (which
    Herald never accepts, but an import could hold) is 400 unless the PATCH replaces it.
    """
    segment = _check_writable(segment)
    segment = Segment.objects.select_for_update().get(pk=segment.pk, app=app)
    if filters is UNSET and is_user_based(segment.filters):
        raise segment_error(400, USER_BASED_SEGMENT)
    if name != segment.name:
        _check_name_free(app=app, name=name, exclude_id=segment.pk)
    segment.name = name
    if description is not UNSET:
        segment.description = description or None
    if filters is not UNSET:
        segment.filters = _checked_filters(filters)
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError as exc:
        raise segment_error(409, NAME_EXISTS) from exc
    return segment


@transaction.atomic
def segment_delete(*, app: App, segment: AnySegment) -> None:
    segment = _check_writable(segment)
    Segment.objects.filter(app=app, pk=segment.pk).delete()
