"""Settings shared by every environment.

With nothing configured Herald runs on embedded defaults: SQLite under ``var/`` and a
SQLite-backed Celery broker, so ``make run`` needs no server. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from config.env import BASE_DIR, VAR_DIR, env, env_bool, env_int, env_secret
from core.logs import logging_settings

VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Absolute base for URLs Herald hands out (CSV export links). Empty: built from the request.
HERALD_PUBLIC_URL = env.str("HERALD_PUBLIC_URL", default="").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "core",
    "apps.apps.TenantAppsConfig",
    "players",
    "segments",
    "notifications",
    "oauth2_provider",
    "imfpush",
    "webhooks",
    # Dashboard login lockout after repeated failures (see AXES_* below).
    "axes",
]

MIDDLEWARE = [
    # First: the request id and timing cover every other middleware.
    "core.observability.RequestObservabilityMiddleware",
    "core.middleware.CollapseSlashesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.DashboardSecurityHeadersMiddleware",
    "core.middleware.JsonErrorsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# API routes accept an optional trailing slash themselves; a redirect would drop a POST body.
APPEND_SLASH = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'herald.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside the writer, and IMMEDIATE
    # transactions take the write lock up front, so a waiting writer waits out `timeout` instead of
    # failing at once with "database is locked" when it tries to upgrade a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # A file cache is shared by web, worker and beat processes, which rate limits need.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Error messages of /imfpush/v1 follow Accept-Language (mobilefirst-push-api.md §1.3); the
# catalogues live in imfpush/locale. en-US is the fallback.
LANGUAGES = [("en-us", "English"), ("de", "Deutsch"), ("es", "Español")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(str(STATIC_ROOT)).mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it before collectstatic
# WhiteNoise serves collected static files with far-future caching and compression; in DEBUG (and in
# tests) it falls back to the app directories, so `make run` needs no collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "HERALD_STATICFILES_STORAGE", default="django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = env_bool("HERALD_STATIC_USE_FINDERS", True)
MEDIA_ROOT = env.path("HERALD_MEDIA_ROOT", default=str(VAR_DIR / "media"))

# Bodies above this are refused with 413 before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("HERALD_MAX_BODY_BYTES", 5 * 1024 * 1024)

LOGIN_URL = "admin:login"

# Security headers: X-Content-Type-Options, Referrer-Policy and Cross-Origin-Opener-Policy on
# every response (SecurityMiddleware), X-Frame-Options on every response (DENY), HSTS in
# production (config/settings/production.py), and this Content-Security-Policy on the dashboard.
# Scripts come only from Herald's own static files (no inline script, so injected markup cannot run
# any); styles may be inline, for the few style attributes and blocks the templates carry. Nothing
# is loaded from another origin, nothing may frame the dashboard, and forms post only to it.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
HERALD_DASHBOARD_CSP = env.str(
    "HERALD_DASHBOARD_CSP",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
)

# --- Dashboard login lockout (django-axes) --------------------------------------------------
# After HERALD_LOGIN_FAILURE_LIMIT failed logins of one user name from one client address, that
# pair is refused (429) for HERALD_LOGIN_LOCKOUT_MINUTES; a success resets the count. The pair,
# not the address alone (an office behind one NAT address is not locked out by one typist) nor
# the user name alone (nobody can lock an operator out from elsewhere). Attempts are rows in the
# database (AxesDatabaseHandler): they survive a Redis flush, work on SQLite for `make run`, and
# operators see and clear them in the dashboard (Axes → Access attempts).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("HERALD_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("HERALD_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.clientip.client_ip"  # honours HERALD_TRUSTED_PROXY_COUNT
# Successful logins are not logged by Axes (Django keeps last_login): only failures are stored,
# and those expire with the lockout, so the tables stay small.
AXES_DISABLE_ACCESS_LOG = True

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.OrjsonRenderer"],
    # Bodies are parsed by core.api.base (OneSignal's rules differ from DRF's: an unparsed
    # body is "app_id not found", not 415).
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.api.exception_handler.onesignal_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Herald API",
    "DESCRIPTION": (
        "OneSignal-compatible server REST API. Every path is also served under /api/v1. "
        "Authenticate with `Authorization: Key <key>` (also `Basic` or `Bearer`): the User key "
        "for /apps, the App key for app-level endpoints. Device endpoints need no key."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/",
    "PREPROCESSING_HOOKS": ["core.api.schema.only_root_api_paths"],
    "ENUM_NAME_OVERRIDES": {"ChannelEnum": ["push", "email", "sms"]},
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "user_key": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Key <USER_KEY>` (or `Basic`/`Bearer`).",
            },
            "app_key": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Key <APP_KEY>` (or `Basic`/`Bearer`).",
            },
        }
    },
}

# --- OAuth 2 for /imfpush/v1 (django-oauth-toolkit) ---------------------------------------
OAUTH2_PROVIDER_APPLICATION_MODEL = "imfpush.ConfidentialClient"
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("HERALD_MFP_TOKEN_SECONDS", 3600),
    # Only the SHA-256 of each access token is stored (RFC 9700 §2.1.1): a database dump holds
    # no usable token.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "OAUTH2_VALIDATOR_CLASS": "imfpush.oauth.ScopePatternValidator",
    "SCOPES_BACKEND_CLASS": "imfpush.oauth.PatternScopes",
    # A token requested without a scope gets MFP's default, which allows no push operation.
    "SCOPES": {"RegisteredClient": "Default scope of a confidential client; grants nothing"},
    "DEFAULT_SCOPES": ["RegisteredClient"],
    # The rest of RFC 9700 (`manage.py check --deploy`). Herald grants client credentials only,
    # so these switch off flows it never offers (implicit, password, plain PKCE, tokens in URLs,
    # http redirects, refresh-token replay) rather than change anything it serves.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}
# Runtime names served at /<runtime>/api/az/v1/token besides "mfp".
HERALD_MFP_RUNTIMES = env.list("HERALD_MFP_RUNTIMES", default=["mfp"])
# Most messages one POST /imfpush/v1/apps/{id}/messages/bulk may carry.
HERALD_MFP_BULK_LIMIT = env_int("HERALD_MFP_BULK_LIMIT", 100)

# --- Celery -------------------------------------------------------------------------------
# Embedded broker: a SQLite file shared by web, worker and beat. Redis when REDIS_URL is set.
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# No remote control (pidbox): Herald never uses it, and its Redis pub/sub channel is where kombu
# fails unrecoverably when Redis goes away while a task runs (the worker exits; tests/reliability).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = env_bool("CELERY_WORKER_ENABLE_REMOTE_CONTROL", False)
# Redis redelivers unacked messages after visibility_timeout; the SQLite transport takes no options.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 3600} if CELERY_BROKER_URL.startswith("redis") else {}
)
CELERY_BEAT_SCHEDULE = {
    "players.expire_csv_exports": {"task": "players.expire_csv_exports", "schedule": 3600.0},
    # Releases scheduled notifications and due batches, and re-queues expired leases.
    "notifications.dispatch_due": {
        "task": "notifications.dispatch_due",
        "schedule": float(env_int("HERALD_DISPATCH_INTERVAL_SECONDS", 5)),
    },
    # Re-enqueues webhook calls whose task was lost (broker flushed, worker killed).
    "webhooks.sweep": {"task": "webhooks.sweep", "schedule": 60.0},
}

# --- Secrets at rest ----------------------------------------------------------------------
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation: prepend a new key).
HERALD_ENCRYPTION_KEYS = env.list("HERALD_ENCRYPTION_KEYS", default=[])

# --- API behaviour ------------------------------------------------------------------------
# "<bucket>=<count>/<s|m|h>" pairs; buckets are per key (or per app for keyless device calls).
HERALD_RATE_LIMITS = {
    "apps": "50/s",
    "players_write": "1000/s",
    "players_read": "100/s",
    "exports": "10/m",
    "notifications_create": "6000/s",
    "notifications_read": "10/s",
    "mfp": "1000/s",  # every /imfpush/v1 call, per confidential client
    # Keyless device calls (POST /players, on_session, ...), per client address (core/clientip.py);
    # generous because carrier-grade NAT puts many devices behind one address.
    "device_ip": "50/s",
    **dict(pair.split("=", 1) for pair in env.list("HERALD_RATE_LIMITS", default=[])),
}
# How many reverse proxies stand in front of Herald (their X-Forwarded-For entries are trusted);
# 0: the client address is the TCP peer (REMOTE_ADDR). Used by per-address limits and the login lockout.
HERALD_TRUSTED_PROXY_COUNT = env_int("HERALD_TRUSTED_PROXY_COUNT", 0)
HERALD_CSV_EXPORT_TTL_SECONDS = env_int("HERALD_CSV_EXPORT_TTL_SECONDS", 3 * 24 * 3600)
# An export still "running" after this long is presumed dead and no longer blocks a new one.
HERALD_CSV_EXPORT_LEASE_SECONDS = env_int("HERALD_CSV_EXPORT_LEASE_SECONDS", 3600)
# CSV imports of players (players/imports.py): the largest upload, and how long a running
# import's claim lasts before a redelivered task may start it again.
HERALD_CSV_IMPORT_MAX_BYTES = env_int("HERALD_CSV_IMPORT_MAX_BYTES", 1024 * 1024 * 1024)
HERALD_CSV_IMPORT_LEASE_SECONDS = env_int("HERALD_CSV_IMPORT_LEASE_SECONDS", 3600)
# Bytes of the file per chunk: each chunk is one transaction, and progress is written after each.
HERALD_CSV_IMPORT_CHUNK_BYTES = env_int("HERALD_CSV_IMPORT_CHUNK_BYTES", 8 * 1024 * 1024)
# PostgreSQL sessions writing each chunk together, each its share of the identifiers: the upsert
# into the players' indexes is PostgreSQL's own work, and one session keeps one core busy.
HERALD_CSV_IMPORT_CONNECTIONS = env_int("HERALD_CSV_IMPORT_CONNECTIONS", 2)

# --- Delivery pipeline --------------------------------------------------------------------
# POST /notifications answers an exact recipient count up to this many players, and beyond it an
# estimate from a sample of about HERALD_RECIPIENT_SAMPLE_ROWS rows (the fan-out counts exactly).
HERALD_EXACT_RECIPIENT_COUNT = env_int("HERALD_EXACT_RECIPIENT_COUNT", 1000)
HERALD_RECIPIENT_SAMPLE_ROWS = env_int("HERALD_RECIPIENT_SAMPLE_ROWS", 20000)
# Tag keys whose numeric comparisons (level < 5) are answered from expression indexes
# (players/tag_indexes.py; `manage.py tag_indexes --apply` builds them). Empty: none.
HERALD_INDEXED_NUMERIC_TAGS = env.list("HERALD_INDEXED_NUMERIC_TAGS", default=[])
HERALD_BATCH_SIZE = env_int("HERALD_BATCH_SIZE", 1000)  # recipients per delivery task
HERALD_FANOUT_CHUNK = env_int("HERALD_FANOUT_CHUNK", 5000)  # players read per fan-out transaction
HERALD_BATCH_LEASE_SECONDS = env_int("HERALD_BATCH_LEASE_SECONDS", 300)
# Sends per step within a batch: outcomes are committed after each, so a worker killed mid-batch
# resends (duplicates) at most one step per pool process. 10 meets issue 8's 0.1% duplicates over
# 10 kills of a 200,000-recipient fan-out; a larger step sends faster to a distant gateway (a
# step's sends share one round trip) and duplicates more (RELIABILITY.md, "Crash tests").
HERALD_DELIVERY_RECORD_EVERY = env_int("HERALD_DELIVERY_RECORD_EVERY", 10)
# ... and a larger notification may take larger steps, up to this many resends per million of its
# recipients per killed process (delivery.record_step). 50 keeps issue 8's bound (0.1% over ten
# kills of a two-process worker) at every audience size instead of only at 200,000.
HERALD_CRASH_RESENDS_PER_MILLION = env_int("HERALD_CRASH_RESENDS_PER_MILLION", 50)
# False: a step's record (not the batch's last) commits without waiting for its WAL flush. A
# killed worker resends no more, but a PostgreSQL crash also resends what its last ~0.6 s of
# steps recorded (three wal_writer_delays); +10-14% fan-out rate at 1,000,000 players (BENCHMARKS.md).
HERALD_DELIVERY_STEP_WAITS_FOR_FLUSH = env_bool("HERALD_DELIVERY_STEP_WAITS_FOR_FLUSH", True)
# A message enqueued this long ago whose work has not started is presumed lost (dispatch_due).
HERALD_REDELIVERY_GRACE_SECONDS = env_int("HERALD_REDELIVERY_GRACE_SECONDS", 60)
HERALD_MAX_DELIVERY_ATTEMPTS = env_int("HERALD_MAX_DELIVERY_ATTEMPTS", 5)
HERALD_RETRY_BASE_SECONDS = float(env_int("HERALD_RETRY_BASE_MS", 1000)) / 1000
# Batches due within this horizon are enqueued with a countdown; later ones wait for dispatch_due
# (far-future ETAs are unsafe on Redis, which redelivers them after visibility_timeout).
HERALD_ETA_HORIZON_SECONDS = env_int("HERALD_ETA_HORIZON_SECONDS", 300)
HERALD_HTTP2_MAX_IN_FLIGHT = env_int("HERALD_HTTP2_MAX_IN_FLIGHT", 200)
# How long one gateway request may take (HTTP/2 and SMS requests, SMTP sessions; SMS at most 20 s).
HERALD_GATEWAY_TIMEOUT_SECONDS = env_int("HERALD_GATEWAY_TIMEOUT_SECONDS", 30)
HERALD_FCM_BASE_URL = env.str("HERALD_FCM_BASE_URL", default="https://fcm.googleapis.com").rstrip("/")
# An extra CA bundle to trust for gateways (the simulators' CA); empty: the system bundle.
HERALD_GATEWAY_CA_FILE = env.str("HERALD_GATEWAY_CA_FILE", default="")
HERALD_IDEMPOTENCY_DAYS = env_int("HERALD_IDEMPOTENCY_DAYS", 30)
# Gateway base URLs, overridable so the simulators can stand in for the real services.
HERALD_APNS_PRODUCTION_URL = env.str(
    "HERALD_APNS_PRODUCTION_URL", default="https://api.push.apple.com"
).rstrip("/")
HERALD_APNS_SANDBOX_URL = env.str(
    "HERALD_APNS_SANDBOX_URL", default="https://api.sandbox.push.apple.com"
).rstrip("/")
HERALD_WNS_TOKEN_URL = env.str("HERALD_WNS_TOKEN_URL", default="https://login.live.com/accesstoken.srf")
# Huawei Push Kit: the OAuth 2 token endpoint and the push API's base (``/v1/{app id}/messages:send``).
HERALD_HMS_TOKEN_URL = env.str(
    "HERALD_HMS_TOKEN_URL", default="https://oauth-login.cloud.huawei.com/oauth2/v3/token"
)
HERALD_HMS_BASE_URL = env.str("HERALD_HMS_BASE_URL", default="https://push-api.cloud.huawei.com").rstrip("/")
# Amazon Device Messaging: the Login with Amazon token endpoint and the messaging API's base
# (``/messaging/registrations/{registration id}/messages``).
HERALD_ADM_TOKEN_URL = env.str("HERALD_ADM_TOKEN_URL", default="https://api.amazon.com/auth/o2/token")
HERALD_ADM_BASE_URL = env.str("HERALD_ADM_BASE_URL", default="https://api.amazon.com").rstrip("/")
# Web Push endpoints, webhook URLs and image URLs must resolve to public addresses unless a network
# is listed here (the simulators run on loopback): comma-separated CIDRs, e.g. 127.0.0.0/8.
HERALD_ALLOWED_PRIVATE_NETWORKS = env.list("HERALD_ALLOWED_PRIVATE_NETWORKS", default=[])
# The public base URL of this Herald for links in messages (email unsubscribe); empty: HERALD_PUBLIC_URL.
HERALD_UNSUBSCRIBE_BASE_URL = env.str("HERALD_UNSUBSCRIBE_BASE_URL", default="")
# Event webhooks: per-attempt timeout, attempts before a call is marked failed, and the base of the
# exponential backoff between attempts (base, 2x, 4x, ... with jitter).
HERALD_WEBHOOK_TIMEOUT_SECONDS = env_int("HERALD_WEBHOOK_TIMEOUT_SECONDS", 10)
HERALD_WEBHOOK_MAX_ATTEMPTS = env_int("HERALD_WEBHOOK_MAX_ATTEMPTS", 5)
HERALD_WEBHOOK_RETRY_BASE_SECONDS = float(env_int("HERALD_WEBHOOK_RETRY_BASE_MS", 30000)) / 1000
# Used by bootstrap_demo to wire the demo app to `python -m gatewaysim` (make run sets them).
HERALD_GATEWAYSIM_CONTROL_URL = env.str("HERALD_GATEWAYSIM_CONTROL_URL", default="").rstrip("/")
HERALD_DEMO_SMTP_PORT = env_int("HERALD_DEMO_SMTP_PORT", 9104)
HERALD_DEMO_SMS_PORT = env_int("HERALD_DEMO_SMS_PORT", 9105)

# --- Observability (README "Observability") ------------------------------------------------
# /metrics answers a scraper that sends `Authorization: Bearer <HERALD_METRICS_TOKEN>` or comes
# from one of HERALD_METRICS_ALLOWED_NETWORKS (CIDRs, matched against REMOTE_ADDR); nobody else.
# Workers record a heartbeat this often; GET /healthz is unready when the newest is older than the max.
HERALD_WORKER_HEARTBEAT_SECONDS = env_int("HERALD_WORKER_HEARTBEAT_SECONDS", 10)
HERALD_WORKER_HEARTBEAT_MAX_AGE_SECONDS = env_int("HERALD_WORKER_HEARTBEAT_MAX_AGE_SECONDS", 60)
HERALD_METRICS_TOKEN = env_secret("HERALD_METRICS_TOKEN") or ""
HERALD_METRICS_ALLOWED_NETWORKS = env.list("HERALD_METRICS_ALLOWED_NETWORKS", default=[])
# Logs: `json` (one object per line, production's default) or `text`; secrets are scrubbed in both.
HERALD_LOG_FORMAT = env.str("HERALD_LOG_FORMAT", default="text")
HERALD_LOG_LEVEL = env.str("HERALD_LOG_LEVEL", default="INFO")
LOGGING = logging_settings(HERALD_LOG_FORMAT, HERALD_LOG_LEVEL)
