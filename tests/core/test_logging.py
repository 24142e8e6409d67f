"""Structured logs: the JSON lines the production configuration writes, request and task ids, the
app id, and secrets scrubbed from everything a request or a task could log.

The fixture applies the real ``LOGGING`` of ``HERALD_LOG_FORMAT=json`` (``core.logs.
logging_settings``) and reads what its handler writes to stderr, so every check is on the text an
operator would see.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re

import pytest
from celery import shared_task
from django.conf import settings
from django.http import JsonResponse
from django.test import Client
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from core.logs import logging_settings
from imfpush.clients import confidential_client_create
from tests.factories import PlayerFactory
from tests.imfpush.conftest import request_token
from tests.imfpush.support import APP_ID, mfp_app

pytestmark = pytest.mark.django_db

logger = logging.getLogger("tests.careless")

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLeakedLeakedLeaked\n"
    "-----END PRIVATE KEY-----"
)
BODY_SECRET = "body-secret-8c1f0e"
PASSWORD = "hunter2-password-77"


@csrf_exempt
def careless_view(request):
    """What a careless handler might log: every header, the raw body, and an exception whose
    message quotes the body. None of it may reach the log output unscrubbed."""
    headers = {k: v for k, v in request.META.items() if k.startswith("HTTP_")}
    logger.info("headers %s", headers, extra={"headers": dict(request.headers)})
    logger.info("body %s", request.body.decode())
    logger.warning("parsed", extra={"payload": json.loads(request.body)})
    try:
        raise ValueError(f"could not use {request.body.decode()}")
    except ValueError:
        logger.exception("upload failed")
    return JsonResponse({"ok": True})


# This module is also the URL conf of the tests marked with it: the real URLs plus the view above.
urlpatterns = [path("careless", careless_view), path("", include("config.urls"))]


@shared_task(name="tests.log_context_probe")
def log_context_probe(notification_id: str, batch_id: int | None = None, **kwargs) -> None:
    logging.getLogger("tests.probe").info("probing")


def configure_logs(log_format: str) -> io.StringIO:
    """Apply the real LOGGING for ``log_format``; its console handler writes to the returned buffer."""
    logging.config.dictConfig(logging_settings(log_format, "INFO"))
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


@pytest.fixture
def json_logs():
    """The JSON configuration; the returned function parses what was written so far."""
    buffer = configure_logs("json")

    def read() -> tuple[str, list[dict]]:
        text = buffer.getvalue()
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
        return text, lines

    yield read
    logging.config.dictConfig(settings.LOGGING)


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "herald.request"]


def test_an_api_request_logs_one_json_access_line_with_request_and_app_ids(api, own, json_logs):
    player = PlayerFactory(app=own.app)
    response = api.get(
        f"/players/{player.id}?app_id={own.app.id}", key=own.app_key, **{"X-Request-ID": "req-42.abc:7"}
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42.abc:7"
    text, lines = json_logs()
    [line] = access_lines(lines)
    assert line["request_id"] == "req-42.abc:7"
    assert line["app_id"] == str(own.app.id)
    assert (line["method"], line["route"], line["status"]) == ("GET", "api/v1/players/<str:player_id>", 200)
    assert line["message"] == f"GET /api/v1/players/{player.id} 200"
    assert line["level"] == "INFO" and isinstance(line["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert own.app_key not in text


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "x" * 200, '"quoted"', "key=hak_0123456789012345678901234567", "-leading-dash"],
)
def test_an_unusable_request_id_is_replaced_by_a_fresh_one(api, own, json_logs, incoming):
    response = api.get(f"/players?app_id={own.app.id}", key=own.app_key, **{"X-Request-ID": incoming})
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    _, lines = json_logs()
    assert [line["request_id"] for line in access_lines(lines)] == [request_id]


def test_each_request_gets_its_own_id_and_no_app_id_carries_over(api, own, json_logs):
    first = api.get(f"/players?app_id={own.app.id}", key=own.app_key)
    second = api.get("/no/such/route")
    assert first["X-Request-ID"] != second["X-Request-ID"]
    _, lines = json_logs()
    by_id = {line["request_id"]: line for line in access_lines(lines)}
    assert by_id[first["X-Request-ID"]]["app_id"] == str(own.app.id)
    assert "app_id" not in by_id[second["X-Request-ID"]]
    assert by_id[second["X-Request-ID"]]["route"] == "<unmatched>"


def test_the_imfpush_surface_binds_the_app_id_too(own, json_logs):
    application = mfp_app(own)
    client_id, secret = confidential_client_create(
        organization=own.organization, client_id="log-test", allowed_scope="*"
    )
    token = request_token(client_id, secret, f"tags.read push.application.{APP_ID}")["access_token"]
    response = Client().get(
        f"/imfpush/v1/apps/{APP_ID}/tags",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    text, lines = json_logs()
    line = access_lines(lines)[-1]
    assert line["route"].startswith("imfpush/v1/") and line["status"] == 200
    assert line["request_id"] == response["X-Request-ID"]
    assert line["app_id"] == str(application.app_id)
    assert token not in text and secret not in text


@pytest.mark.urls("tests.core.test_logging")
def test_no_secret_sent_in_a_request_reaches_the_logs(client, own, json_logs):
    """Authorization, key/secret/password/token/private_key fields and a PEM block, sent in
    headers and body, logged carelessly in every way: none of them appears in the output."""
    body = {
        "app_id": str(own.app.id),
        "key": BODY_SECRET,
        "client_secret": BODY_SECRET + "-cs",
        "password": PASSWORD,
        "token": BODY_SECRET + "-tok",
        "private_key": PEM,
        "name": "visible-name",
    }
    response = client.post(
        "/careless",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Key {own.app_key}",
        HTTP_X_API_KEY=BODY_SECRET + "-hdr",
        HTTP_X_REQUEST_ID="careless-1",
    )
    assert response.status_code == 200
    text, lines = json_logs()
    # The check can fail: the careless lines are there, with the request id, and say something.
    careless = [line for line in lines if line["logger"] == "tests.careless"]
    assert len(careless) == 4 and text.strip()
    assert all(line["request_id"] == "careless-1" for line in careless)
    assert "visible-name" in text and "upload failed" in text and "ValueError" in text
    assert careless[2]["payload"]["name"] == "visible-name"
    assert careless[2]["payload"]["key"] == "[REDACTED]"
    assert "Traceback" in careless[3]["exc_info"]
    for secret in (own.app_key, BODY_SECRET, PASSWORD, "LeakedLeaked", "BEGIN PRIVATE KEY"):
        assert secret not in text, secret


def test_a_direct_log_call_is_scrubbed_in_message_args_extras_and_traceback(json_logs):
    log = logging.getLogger("tests.direct")
    log.info("Authorization: Bearer abc.def.ghi-0123456789 then %s", {"password": PASSWORD})
    log.info("pem %s", PEM.replace("\n", "\\n"))  # JSON-escaped PEM, as in a request body
    log.warning("creds", extra={"vapid_private_key": "raw-private", "settings": {"gcm_key": "AIzaSecret"}})
    log.info("link /email/unsubscribe/Zm9vYmFyLXNlY3JldA:1abc:xyz sent")
    try:
        {"apns_p8": PEM}["missing"]
    except KeyError:
        log.exception("lookup of %s failed", "apns_p8=" + BODY_SECRET)
    text, lines = json_logs()
    assert len(lines) == 5
    for secret in ("abc.def.ghi", PASSWORD, "LeakedLeaked", "raw-private", "AIzaSecret", BODY_SECRET):
        assert secret not in text, secret
    assert "Zm9vYmFyLXNlY3JldA" not in text and "/email/unsubscribe/[REDACTED]" in text
    assert lines[2]["vapid_private_key"] == "[REDACTED]"
    assert lines[2]["settings"] == {"gcm_key": "[REDACTED]"}
    assert "KeyError" in lines[4]["exc_info"]


def test_a_celery_task_logs_with_its_task_id_and_the_ids_in_its_arguments(json_logs):
    log_context_probe.apply(
        args=("0b6b3c3e-9d1f-4f6e-8d1c-2f1f4b0c9a11",), kwargs={"batch_id": 7}, task_id="t-1"
    )
    logging.getLogger("tests.after").info("after the task")
    _, lines = json_logs()
    [probe] = [line for line in lines if line["logger"] == "tests.probe"]
    assert probe["task_id"] == "t-1" and probe["task_name"] == "tests.log_context_probe"
    assert probe["notification_id"] == "0b6b3c3e-9d1f-4f6e-8d1c-2f1f4b0c9a11"
    assert probe["batch_id"] == "7"
    [after] = [line for line in lines if line["logger"] == "tests.after"]
    assert "task_id" not in after and "notification_id" not in after


def test_text_format_shows_the_context_and_scrubs_too(api, own):
    buffer = configure_logs("text")
    try:
        api.get(f"/players?app_id={own.app.id}", key=own.app_key, **{"X-Request-ID": "text-1"})
        logging.getLogger("tests.text").info("token=%s", BODY_SECRET)
    finally:
        logging.config.dictConfig(settings.LOGGING)
    err = buffer.getvalue()
    assert f"herald.request [request_id=text-1 app_id={own.app.id}]: GET /api/v1/players 200" in err
    assert "token=[REDACTED]" in err and BODY_SECRET not in err


def test_an_unknown_log_format_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="HERALD_LOG_FORMAT"):
        logging_settings("xml", "INFO")
