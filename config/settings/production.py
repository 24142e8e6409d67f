"""Production: every secret comes from the environment, and unsafe settings refuse to start."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import env, env_bool, env_int
from core.logs import logging_settings

from .base import *  # noqa: F403
from .base import DEBUG, HERALD_ENCRYPTION_KEYS, HERALD_LOG_LEVEL, SECRET_KEY

if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) is required in production.")
if not HERALD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "HERALD_ENCRYPTION_KEYS is required in production: generate one with "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_CONTENT_TYPE_NOSNIFF = True
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# One JSON object per log line unless HERALD_LOG_FORMAT=text.
HERALD_LOG_FORMAT = env.str("HERALD_LOG_FORMAT", default="json")
LOGGING = logging_settings(HERALD_LOG_FORMAT, HERALD_LOG_LEVEL)
