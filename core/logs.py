"""Structured logs: request and task context on every line, secrets scrubbed, JSON or text.

Every log record passes two handler filters before it is formatted:

1. ``ContextFilter`` copies the current context (``request_id``, ``app_id``, and in Celery
   tasks ``task_id``, ``task_name``, ``notification_id``, ``batch_id``) onto the record. The
   context lives in ``contextvars``: the request middleware binds the request id, the API base
   views bind the app once they have resolved it, and Celery's ``task_prerun`` binds the task.
2. ``ScrubSecretsFilter`` rewrites the message, the extra fields and the traceback so that no
   line holds an ``Authorization`` value, a ``key``/``secret``/``password``/``token``/
   ``private_key`` field, a PEM block, a Herald API key or a capability URL's token.

Filters sit on the handler, not on a logger, so they see records propagated from every logger.
``HERALD_LOG_FORMAT=json`` selects ``JsonFormatter`` (one JSON object per line), ``text`` a
human-readable line; see ``logging_settings``.

The JSON formatter is written here (a few lines over orjson) rather than taken from
python-json-logger because the scrubbing has to control exactly which record attributes are
emitted and how tracebacks are rendered; the library would re-render ``exc_info`` itself.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import re
from datetime import UTC, datetime
from typing import Any

import orjson

REDACTED = "[REDACTED]"

# --- context ------------------------------------------------------------------------------------

CONTEXT_FIELDS = ("request_id", "app_id", "task_id", "task_name", "notification_id", "batch_id")
_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"herald_log_{name}", default=None) for name in CONTEXT_FIELDS
}
# Task arguments that identify what a task works on, bound when it starts.
TASK_ARGUMENTS = ("notification_id", "batch_id", "app_id")


def bind(**values: Any) -> None:
    """Set context fields for the rest of this request or task (``None`` clears one)."""
    for name, value in values.items():
        _context[name].set(None if value is None else str(value))


def bind_app(app: Any) -> None:
    """Called by the API base views once the tenant's app is resolved (``self.app``)."""
    if app is not None:
        bind(app_id=app.pk)


def current() -> dict[str, str]:
    return {name: value for name, var in _context.items() if (value := var.get()) is not None}


def clear() -> None:
    for var in _context.values():
        var.set(None)


class ContextFilter(logging.Filter):
    """Puts the context fields on the record, and a compact ``context`` string for text logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = current()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, values.get(name))
        shown = {name: getattr(record, name) for name in CONTEXT_FIELDS if getattr(record, name)}
        record.context = (" [" + " ".join(f"{k}={v}" for k, v in shown.items()) + "]") if shown else ""
        return True


# --- Celery -------------------------------------------------------------------------------------


def _task_started(task_id=None, task=None, args=None, kwargs=None, **_: Any) -> None:
    clear()
    bind(task_id=task_id, task_name=getattr(task, "name", None))
    try:
        arguments = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {})).arguments
    except (TypeError, ValueError, AttributeError):
        return
    bind(**{name: arguments[name] for name in TASK_ARGUMENTS if arguments.get(name) is not None})


def _task_finished(**_: Any) -> None:
    clear()


def connect_celery_signals() -> None:
    """Bind each task's id, name and the ids among its arguments while it runs (CoreConfig.ready)."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False, dispatch_uid="herald-log-task-started")
    task_postrun.connect(_task_finished, weak=False, dispatch_uid="herald-log-task-finished")


# --- scrubbing ----------------------------------------------------------------------------------

# A field whose name ends in one of these words holds a secret: key, app_key, gcm_key,
# private_key, client_secret, password, access_token, apns_p8, p12_password, ...
_SECRET_NAME = r"[A-Za-z0-9_.-]*?(?:password|passwd|pwd|secret|token|key|p8|p12|credentials?|cookie)"  # noqa: S105
SECRET_NAME = re.compile(rf"(?i)^(?:{_SECRET_NAME}|authorization|proxy-authorization|http_authorization)$")
_QUOTED = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM blocks, whole or cut off, raw or JSON-escaped.
    (re.compile(r"-----BEGIN[^-\r\n]*-----[\s\S]*?(?:-----END[^-\r\n]*-----|$)"), "[REDACTED PEM]"),
    # Authorization: <scheme> <credentials>, as a header line, a dict entry or a WSGI key.
    (
        re.compile(
            r"(?i)(\b(?:http_)?(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(?:basic|bearer|key|token|digest)\s+)?[^\s\"',;}]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # "key": "value", 'password': 'value', token=value, client_secret: value
    (
        re.compile(rf"(?i)([\"']?\b{_SECRET_NAME}\b[\"']?\s*[:=]\s*)(?:{_QUOTED}|[^\s\"',&;}}\]]+)"),
        rf"\1{REDACTED}",
    ),
    # Herald's own API keys (core.keys.generate_key: hak_ app keys, huk_ user keys).
    (re.compile(r"\b(?:hak|huk)_[A-Za-z0-9_-]{20,}"), REDACTED),
    # Capability URLs: the path itself is the secret.
    (re.compile(r"(/email/unsubscribe/)[^\s\"'?#]+"), rf"\1{REDACTED}"),
    (re.compile(r"(/csv_exports/[^/\s\"']+/)[^\s\"'?#]+"), rf"\1{REDACTED}"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_value(value: Any, name: str = "") -> Any:
    """Scrub one field: redact it whole when its name says secret, else scrub what it holds."""
    if name and SECRET_NAME.match(name) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v) for v in value]
    return value


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "context",
    *CONTEXT_FIELDS,
}
# Extras that Django attaches and that carry no value in a log line (objects, not data).
_DROPPED_EXTRAS = frozenset({"request", "server_time"})


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and k not in _DROPPED_EXTRAS}


class ScrubSecretsFilter(logging.Filter):
    """Rewrites the record in place: message, extras, traceback and stack are scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = scrub(message), None
        for name, value in extra_fields(record).items():
            setattr(record, name, scrub_value(value, name))
        if record.exc_info:
            # Rendered once here, so no formatter renders the unscrubbed traceback again.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


# --- formatting ---------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, extras and
    ``exc_info`` (the traceback), in that order."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        for name, value in extra_fields(record).items():
            line.setdefault(name, _json_safe(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(self.formatException(record.exc_info))
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
LOG_FORMATS = ("json", "text")


def logging_settings(log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for ``HERALD_LOG_FORMAT`` (``json`` or ``text``) and ``HERALD_LOG_LEVEL``.

    Django's own loggers (``django``, ``django.server``) are sent through the same handler, so
    their lines are formatted and scrubbed like everyone else's.
    """
    if log_format not in LOG_FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"HERALD_LOG_FORMAT must be json or text, got {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "core.logs.ContextFilter"},
            "scrub_secrets": {"()": "core.logs.ScrubSecretsFilter"},
        },
        "formatters": {
            "json": {"()": "core.logs.JsonFormatter"},
            "text": {"format": TEXT_FORMAT},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context", "scrub_secrets"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": [], "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "django.db.backends": {"level": "WARNING"},
        },
    }
