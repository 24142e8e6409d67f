"""Security headers, CSRF on the dashboard, and ``manage.py check --deploy`` with the production
settings (issue 8 §6)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from apps.models import App, Membership
from tests.security.support import changed_tables, rolled_back, snapshot

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment production requires (README "Configuration"), and nothing from this one's
    Django settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HERALD_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x9" * 32 + "-production-test-secret-with-enough-entropy",
        "DJANGO_ALLOWED_HOSTS": "herald.example.com",
        "HERALD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HERALD_VAR_DIR": str(tmp_path / "var"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --- manage.py check --deploy ----------------------------------------------------------------------


def test_check_deploy_passes_with_the_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout
    # Two checks are silenced, each with its reason in config/settings/production.py.
    assert "(2 silenced)" in result.stdout


def test_production_refuses_debug_and_a_missing_secret(tmp_path):
    debug = run(["manage.py", "check"], production_env(tmp_path, DJANGO_DEBUG="1"))
    assert debug.returncode != 0 and "DJANGO_DEBUG must be off in production" in debug.stderr
    env = production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    missing = run(["manage.py", "check"], env)
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr


PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="herald.example.com")
out = {}
for name, path, secure in (("https_api", "/api/v1/nothing", True), ("http_api", "/api/v1/nothing", False),
                           ("https_admin", "/admin/login/", True)):
    response = client.get(path, secure=secure)
    cookies = {key: bool(morsel["secure"]) for key, morsel in response.cookies.items()}
    out[name] = {"status": response.status_code, "headers": dict(response.headers), "secure_cookies": cookies}
print(json.dumps(out))
"""


def test_production_sends_hsts_on_https_and_the_other_headers_everywhere(tmp_path):
    result = run(["-c", PROBE], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    secure = answers["https_api"]["headers"]
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in answers["http_api"]["headers"]  # only over https
    for answer in answers.values():
        headers = answer["headers"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"
    admin = answers["https_admin"]
    assert admin["status"] == 200
    assert "frame-ancestors 'none'" in admin["headers"]["Content-Security-Policy"]
    assert admin["secure_cookies"] == {"csrftoken": True}  # the CSRF cookie only travels over https


# --- headers in this process's settings -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/apps", "/apps", "/imfpush/v1/apps/x/devices", "/admin/login/", "/metrics", "/nowhere"]
)
def test_every_answer_carries_the_security_headers(db, path):
    response = Client().get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_dashboard_has_a_content_security_policy_and_the_api_does_not_need_one(db):
    login = Client().get("/admin/login/")
    policy = dict(
        part.strip().split(" ", 1) for part in login["Content-Security-Policy"].split(";") if part.strip()
    )
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "http" not in policy["script-src"]  # no script from another origin
    assert "Content-Security-Policy" not in Client().get("/api/v1/apps")


# --- CSRF on the dashboard ------------------------------------------------------------------------


@pytest.fixture
def owner(own):
    user = get_user_model().objects.create_superuser("csrf-owner", password="pw")
    Membership.objects.create(organization=own.organization, user=user, role=Membership.Role.OWNER)
    return user


def test_a_dashboard_post_without_the_csrf_token_is_refused(own, owner):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    url = f"/admin/apps/app/{own.app.pk}/change/"
    page = browser.get(url)
    assert page.status_code == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)[1].decode()
    data = {"name": "renamed", "organization": str(own.organization.pk), "apns_env": "production"}
    data |= {"keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0"}
    with rolled_back():
        before = snapshot()
        refused = browser.post(url, data)
        after = snapshot()
    assert refused.status_code == 403 and b"CSRF" in refused.content
    assert not changed_tables(before, after)
    # The same post with the token goes through, so the refusal above was the token.
    accepted = browser.post(url, {**data, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert App.objects.get(pk=own.app.pk).name == "renamed"


def test_the_login_form_needs_the_csrf_token(owner):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/admin/login/", {"username": "csrf-owner", "password": "pw"})
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_a_dashboard_session_grants_nothing_on_the_api(own, owner):
    """The API authenticates keys only: a logged-in browser's cookie cannot be ridden (CSRF) into
    an API call, so the API needs no CSRF token."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    response = browser.post("/api/v1/apps", data=json.dumps({"name": "x"}), content_type="application/json")
    assert response.status_code == 400 and "User Auth key" in response.json()["errors"][0]
    response = browser.get(f"/players?app_id={own.app.pk}")
    assert response.status_code == 403


def test_settings_keep_the_session_and_csrf_cookies_off_scripts():
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.CSRF_COOKIE_SAMESITE == "Lax" and settings.SESSION_COOKIE_SAMESITE == "Lax"
