"""POST /apps/{app_id}/players/csv_import and GET …/csv_import/{id}: Herald's extension. The import
itself is tested in test_csv_import.py and, through a real worker, in tests/e2e."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from players.import_services import CONCURRENT_IMPORT, csv_import_run, import_path
from players.models import CsvImport, Player

pytestmark = pytest.mark.django_db

CSV = b'identifier,device_type,tags\ntok-1,1,{}\ntok-2,1,"{""a"":""b""}"\nbad token,1,{}\n'
PUBLIC_KEYS = {
    "id",
    "status",
    "file_name",
    "columns",
    "size_bytes",
    "bytes_read",
    "rows_processed",
    "rows_created",
    "rows_updated",
    "rows_failed",
    "errors",
    "error",
    "created_at",
    "started_at",
    "finished_at",
}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def upload(api, tenant, data: bytes = CSV, *, key: str | None = None, name: str = "players.csv", app_id=None):
    return api.client.post(
        f"{api.root}/apps/{app_id or tenant.app.id}/players/csv_import",
        {"file": SimpleUploadedFile(name, data, content_type="text/csv")},
        HTTP_AUTHORIZATION=f"Key {key or tenant.app_key}",
    )


def test_a_multipart_upload_starts_an_import(api, own):
    response = upload(api, own)
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    job = CsvImport.objects.get(app=own.app)
    assert body["id"] == str(job.id) and body["status"] == "pending"
    assert body["file_name"] == "players.csv" and body["columns"] == ["identifier", "device_type", "tags"]
    assert body["size_bytes"] == len(CSV) and body["rows_processed"] == 0 and body["error"] is None
    assert import_path(job).read_bytes() == CSV
    assert not Player.objects.exists()  # a worker does the work


def test_progress_and_refused_rows_are_read_back(api, own):
    job_id = upload(api, own).json()["id"]
    csv_import_run(import_id=job_id)
    response = api.get(f"/apps/{own.app.id}/players/csv_import/{job_id}", key=own.app_key)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed" and body["rows_processed"] == 3
    assert (body["rows_created"], body["rows_updated"], body["rows_failed"]) == (2, 0, 1)
    assert body["errors"] == [{"row": 3, "error": "identifier must not contain spaces or control characters"}]
    assert body["bytes_read"] == body["size_bytes"] and body["finished_at"] >= body["started_at"]
    assert Player.objects.get(app=own.app, identifier="tok-2").tags == {"a": "b"}


@pytest.mark.parametrize("content_type", ["text/csv", "application/gzip", "application/octet-stream"])
def test_the_file_may_be_the_body(api_root, own, content_type):
    data = gzip.compress(CSV) if content_type != "text/csv" else CSV
    response = api_root.post(
        f"/apps/{own.app.id}/players/csv_import", raw=data, content_type=content_type, key=own.app_key
    )
    assert response.status_code == 202, response.content
    job = CsvImport.objects.get()
    assert job.size_bytes == len(data) and job.file_name == ""
    csv_import_run(import_id=str(job.id))
    assert Player.objects.filter(app=own.app).count() == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"identifier,device_type,secret\n", "Unknown column 'secret' in the header"),
        (b"device_type\n1\n", "The header must name the column 'identifier'"),
        (b"", "The CSV file is empty"),
    ],
)
def test_a_bad_file_is_400_and_nothing_is_kept(api, own, data, message, tmp_path):
    response = upload(api, own, data)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)
    assert not CsvImport.objects.exists()
    assert not [p for p in Path(tmp_path).rglob("*") if p.is_file()]


def test_a_body_that_is_neither_a_file_nor_multipart_is_400(api, own):
    for body, content_type in (
        (b'{"file": "x"}', "application/json"),
        (b"a=b", "application/x-www-form-urlencoded"),
    ):
        response = api.post(
            f"/apps/{own.app.id}/players/csv_import", raw=body, content_type=content_type, key=own.app_key
        )
        assert response.status_code == 400
        assert "multipart/form-data field named file" in response.json()["errors"][0]
    response = api.client.post(
        f"/api/v1/apps/{own.app.id}/players/csv_import",
        {"other": "x"},
        HTTP_AUTHORIZATION=f"Key {own.app_key}",
    )
    assert response.status_code == 400
    assert not CsvImport.objects.exists()


def test_a_broken_multipart_body_is_400_not_500(api, own):
    response = api.post(
        f"/apps/{own.app.id}/players/csv_import",
        raw=b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nidentifier',
        content_type="multipart/form-data; boundary=xx",
        key=own.app_key,
    )
    assert response.status_code == 400
    response = api.post(
        f"/apps/{own.app.id}/players/csv_import",
        raw=b"whatever",
        content_type="multipart/form-data",
        key=own.app_key,
    )
    assert response.status_code == 400
    assert not CsvImport.objects.exists()


def test_too_large_is_413(api, own, settings):
    settings.HERALD_CSV_IMPORT_MAX_BYTES = 40
    response = upload(api, own, CSV + b"tok-3,1,{}\n" * 10)
    assert response.status_code == 413
    assert response.json() == {"errors": ["The CSV file is larger than 40 bytes"]}
    assert not CsvImport.objects.exists()


def test_one_import_at_a_time(api, own):
    assert upload(api, own).status_code == 202
    second = upload(api, own)
    assert second.status_code == 400 and second.json() == {"errors": [CONCURRENT_IMPORT]}
    assert CsvImport.objects.count() == 1


def test_the_key_must_be_that_apps(api, api_root, own, teammate, outsider):
    assert upload(api, own, key=outsider.app_key).status_code == 400  # legacy root: 400
    assert upload(api_root, own, key=teammate.app_key).status_code == 403  # current root: 403
    response = api.client.post(
        f"/api/v1/apps/{own.app.id}/players/csv_import", {"file": SimpleUploadedFile("a.csv", CSV)}
    )
    assert response.status_code == 400
    assert not CsvImport.objects.exists()


def test_another_apps_import_is_not_found(api, own, outsider):
    job_id = upload(api, outsider).json()["id"]
    response = api.get(f"/apps/{own.app.id}/players/csv_import/{job_id}", key=own.app_key)
    assert response.status_code == 404 and response.json() == {"errors": ["CSV import not found"]}
    for bad in (str(uuid.uuid4()), "not-a-uuid", "%00"):
        response = api.get(f"/apps/{own.app.id}/players/csv_import/{bad}", key=own.app_key)
        assert response.status_code == 404
    assert api.get(f"/apps/{outsider.app.id}/players/csv_import/{job_id}", key=own.app_key).status_code == 400
