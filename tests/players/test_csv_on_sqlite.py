"""The players' CSV import and export run on PostgreSQL's COPY. On `make run`'s embedded SQLite
default the API refuses them at once with a clear 501, and keeps nothing (they used to be accepted,
then fail in the worker with "unexpected error (OperationalError)")."""

from __future__ import annotations

import json

from tests.embedded import embedded_env, manage

CSV_CALLS_ON_SQLITE = """
import json
from django.test import Client
from apps.demo import bootstrap_demo
from players.models import CsvExport, CsvImport
demo = bootstrap_demo(org_name="sqlite")
client = Client(HTTP_AUTHORIZATION=f"Key {demo.app_key}")
imported = client.post(
    f"/api/v1/apps/{demo.app_id}/players/csv_import",
    b"identifier,device_type\\ntok-1,1\\n",
    content_type="text/csv",
)
exported = client.post(
    f"/api/v1/players/csv_export?app_id={demo.app_id}", "{}", content_type="application/json"
)
print(json.dumps({
    "import": [imported.status_code, imported.json()],
    "export": [exported.status_code, exported.json()],
    "jobs": CsvImport.objects.count() + CsvExport.objects.count(),
}))
"""


def test_the_csv_import_and_export_refuse_sqlite_clearly_and_keep_nothing(tmp_path):
    env = {**embedded_env(tmp_path), "DJANGO_ALLOWED_HOSTS": "testserver"}
    assert manage(env, "migrate", "-v0").returncode == 0
    done = manage(env, "shell", "-c", CSV_CALLS_ON_SQLITE)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    for what, name in (("import", "The CSV import"), ("export", "The CSV export")):
        status, body = answer[what]
        assert status == 501
        assert body["errors"] == [
            f"{name} needs PostgreSQL (it runs on COPY); this database is sqlite. "
            "Set DATABASE_URL=postgres://… (see the README's Quickstart)."
        ]
    assert answer["jobs"] == 0
    assert not list(tmp_path.rglob("*.upload"))  # the upload was not stored either
