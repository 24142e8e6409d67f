"""config/wsgi.py: what a web server copies from its process environment never reaches Django."""

from __future__ import annotations

import io
import os

import orjson
import pytest
from django.core.signals import request_started

from config.wsgi import application


@pytest.fixture
def environ_seen_by_django():
    seen: dict = {}

    def remember(sender, environ, **kwargs):
        seen.update(environ)

    request_started.connect(remember)
    yield seen
    request_started.disconnect(remember)


def call(environ: dict) -> tuple[str, bytes]:
    statuses = []
    body = b"".join(application(environ, lambda status, headers, *exc: statuses.append(status)))
    return statuses[0], body


def request_environ(**extra) -> dict:
    # As Granian builds it (granian/wsgi.py): the process environment, then the request's keys.
    return {
        **os.environ,
        "DATABASE_URL": "postgres://herald:db-password@db/herald",
        "DJANGO_SECRET_KEY": "the-secret-key",
        "HERALD_ENCRYPTION_KEYS": "the-fernet-key",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "Granian",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/healthz/live",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_HOST": "localhost",
        "HTTP_X_REQUEST_ID": "req-123",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        **extra,
    }


def test_the_process_environment_is_dropped_and_the_request_kept(environ_seen_by_django):
    status, body = call(request_environ())

    assert status.startswith("200")
    assert orjson.loads(body) == {"status": "ok"}
    for secret in ("DATABASE_URL", "DJANGO_SECRET_KEY", "HERALD_ENCRYPTION_KEYS", "PATH", "HOME"):
        assert secret not in environ_seen_by_django
    assert environ_seen_by_django["PATH_INFO"] == "/healthz/live"
    assert environ_seen_by_django["REMOTE_ADDR"] == "203.0.113.9"
    assert environ_seen_by_django["HTTP_X_REQUEST_ID"] == "req-123"
    assert environ_seen_by_django["SERVER_SOFTWARE"] == "Granian"
    assert environ_seen_by_django["wsgi.url_scheme"] == "http"


def test_a_request_body_still_arrives(environ_seen_by_django, db):
    payload = b'{"app_id": "not-a-uuid"}'
    status, body = call(
        request_environ(
            REQUEST_METHOD="POST",
            PATH_INFO="/api/v1/players",
            CONTENT_TYPE="application/json",
            CONTENT_LENGTH=str(len(payload)),
            **{"wsgi.input": io.BytesIO(payload)},
        )
    )

    # The body was read: the app id it names is refused, not "app_id not found".
    assert status.startswith("400")
    assert "not-a-uuid" in orjson.loads(body)["errors"][0]
    assert environ_seen_by_django["CONTENT_LENGTH"] == str(len(payload))
