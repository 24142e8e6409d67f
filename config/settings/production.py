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
# HSTS on every https response (one year, this host and its subdomains). Preloading is a
# commitment to the browsers' lists that only the operator can make: off unless asked for.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SILENCED_SYSTEM_CHECKS = [
    # security.W008 (SECURE_SSL_REDIRECT off): TLS ends at the reverse proxy, which redirects
    # http to https for browsers. Django redirecting too would answer the compose health check
    # and Prometheus (plain http on the private network) with 301s, and a 301 to an API POST
    # loses its body. DJANGO_SECURE_SSL_REDIRECT=1 turns it on where no proxy does it.
    "security.W008",
    # security.W021 (HSTS preload off): see SECURE_HSTS_PRELOAD above.
    "security.W021",
]
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# One JSON object per log line unless HERALD_LOG_FORMAT=text.
HERALD_LOG_FORMAT = env.str("HERALD_LOG_FORMAT", default="json")
LOGGING = logging_settings(HERALD_LOG_FORMAT, HERALD_LOG_LEVEL)
