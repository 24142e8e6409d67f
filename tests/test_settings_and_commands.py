from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client

from apps.models import AppKey, UserKey
from imfpush.models import ConfidentialClient, MfpApplication
from tests.imfpush.conftest import MfpClient, basic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_production(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HERALD_ENCRYPTION"))}
    clean.update(
        env, DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_ALLOWED_HOSTS="herald.example"
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": "s", "HERALD_ENCRYPTION_KEYS": "k"}, "DJANGO_DEBUG"),
        ({"HERALD_ENCRYPTION_KEYS": "k"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "s"}, "HERALD_ENCRYPTION_KEYS"),
    ],
)
def test_production_refuses_unsafe_settings(env, complaint):
    result = load_production(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


def test_production_starts_when_configured(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("a-real-secret\n")
    result = load_production(
        DJANGO_SECRET_KEY_FILE=str(secret_file),
        HERALD_ENCRYPTION_KEYS="dGVzdC1rZXktb25lLW5vdC1hLXNlY3JldC0wMDAwMDA=",
        HERALD_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_bootstrap_demo_prints_usable_credentials_every_run(api):
    outputs = []
    for _ in range(2):
        out = StringIO()
        call_command("bootstrap_demo", "--json", stdout=out)
        outputs.append(json.loads(out.getvalue()))
    first, second = outputs
    assert set(first) == {
        "user_key",
        "app_id",
        "app_key",
        "admin_user",
        "admin_password",
        "client_id",
        "client_secret",
    }
    assert first["app_id"] == second["app_id"] and first["app_key"] != second["app_key"]
    assert api.get("/apps", key=second["user_key"]).status_code == 200
    assert api.get(f"/players?app_id={second['app_id']}", key=second["app_key"]).status_code == 200
    assert api.get(f"/players?app_id={first['app_id']}", key=first["app_key"]).status_code == 400
    assert AppKey.objects.active().filter(app_id=second["app_id"]).count() == 1
    assert UserKey.objects.active().count() == 1
    # django-axes checks every authentication against its lockouts, so it needs the request.
    credentials = {"username": second["admin_user"], "password": second["admin_password"]}
    assert api.client.login(request=HttpRequest(), **credentials)


@pytest.mark.django_db
def test_bootstrap_demo_prints_a_confidential_client_for_imfpush():
    mfp = MfpClient()

    def token(client_id, secret, scope="apps.read devices.read push.application.*"):
        return Client().post(
            "/mfp/api/az/v1/token",
            {"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": basic(client_id, secret)},
        )

    outputs = []
    for _ in range(2):
        out = StringIO()
        call_command("bootstrap_demo", "--json", stdout=out)
        outputs.append(json.loads(out.getvalue()))
    first, second = outputs
    assert first["client_id"] == second["client_id"] == "demo"
    assert (
        first["client_secret"]
        and second["client_secret"]
        and first["client_secret"] != second["client_secret"]
    )
    assert token("demo", first["client_secret"]).status_code == 401  # rotated by the re-run
    response = token("demo", second["client_secret"])
    assert response.status_code == 200  # allowed every scope
    access = response.json()["access_token"]
    apps = mfp.get("apps?expand=true", token=access).json()["applications"]
    assert [a["applicationId"] for a in apps] == ["com.herald.demo"]
    assert MfpApplication.objects.get(application_id="com.herald.demo").app_id.hex == second[
        "app_id"
    ].replace("-", "")
    assert mfp.get("apps/com.herald.demo/devices", token=access).status_code == 200
    assert ConfidentialClient.objects.get().allowed_scope == "*"

    out = StringIO()
    call_command("bootstrap_demo", "--org", "acme corp", "--json", stdout=out)
    acme = json.loads(out.getvalue())
    assert (
        acme["client_id"] == "acme-corp-demo"
        and token("acme-corp-demo", acme["client_secret"]).status_code == 200
    )


@pytest.mark.django_db
def test_bootstrap_demo_takes_an_organization_name():
    out = StringIO()
    call_command("bootstrap_demo", "--org", "acme", stdout=out)
    assert "acme-admin" in out.getvalue() and "app_key" in out.getvalue()
