"""CSV export requests. The full run through a real Celery worker is in tests/e2e."""

from __future__ import annotations

import re

import pytest

from players.export_services import CONCURRENT_EXPORT
from players.models import CsvExport

pytestmark = pytest.mark.django_db

URL = re.compile(
    r"^http://testserver/csv_exports/(?P<app>[0-9a-f-]{36})/users_[0-9a-f]{32}_\d{4}-\d{2}-\d{2}\.csv\.gz$"
)


def test_an_empty_body_starts_an_export_and_returns_its_url(api, own):
    response = api.post(f"/players/csv_export?app_id={own.app.id}", raw=b"", key=own.app_key)
    assert response.status_code == 200
    match = URL.match(response.json()["csv_file_url"])
    assert match and match["app"] == str(own.app.id)
    export = CsvExport.objects.get(app=own.app)
    assert export.status == CsvExport.Status.PENDING and export.extra_fields == []


def test_the_url_answers_403_until_the_file_is_ready(api, own):
    url = api.post(f"/players/csv_export?app_id={own.app.id}", key=own.app_key).json()["csv_file_url"]
    response = api.client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 403
    assert response.json() == {"errors": ["This export is not ready yet; try again shortly"]}


def test_a_guessed_url_is_404(api, own):
    api.post(f"/players/csv_export?app_id={own.app.id}", key=own.app_key)
    response = api.client.get(f"/csv_exports/{own.app.id}/users_{'0' * 32}_2026-01-01.csv.gz")
    assert response.status_code == 404


def test_one_export_at_a_time_per_app(api, own, teammate):
    assert api.post(f"/players/csv_export?app_id={own.app.id}", key=own.app_key).status_code == 200
    second = api.post(f"/players/csv_export?app_id={own.app.id}", key=own.app_key)
    assert second.status_code == 400 and second.json() == {"errors": [CONCURRENT_EXPORT]}
    assert api.post(f"/players/csv_export?app_id={teammate.app.id}", key=teammate.app_key).status_code == 200
    assert CsvExport.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"extra_fields": ["password"]}, "extra_fields: unknown field 'password'"),
        ({"last_active_since": "yesterday"}, "last_active_since must be unix seconds"),
        ({"segment_name": "No Such Segment"}, 'Segment "No Such Segment" does not exist'),
        ({"extra_fields": "country"}, "extra_fields: "),
    ],
)
def test_bad_export_requests_are_400_and_start_nothing(api, own, body, message):
    response = api.post(f"/players/csv_export?app_id={own.app.id}", body, key=own.app_key)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)
    assert not CsvExport.objects.exists()


def test_export_filters_are_recorded(api, own):
    body = {
        "extra_fields": ["country", "location"],
        "last_active_since": "1469392779",
        "segment_name": "Subscribed Users",
    }
    assert api.post(f"/players/csv_export?app_id={own.app.id}", body, key=own.app_key).status_code == 200
    export = CsvExport.objects.get()
    assert export.extra_fields == ["country", "location"] and export.segment_name == "Subscribed Users"
    assert int(export.last_active_since.timestamp()) == 1469392779


def test_export_needs_the_key_of_that_app(api, own, outsider):
    assert api.post(f"/players/csv_export?app_id={own.app.id}").status_code == 400
    assert api.post(f"/players/csv_export?app_id={own.app.id}", key=outsider.app_key).status_code == 400
    assert not CsvExport.objects.exists()
