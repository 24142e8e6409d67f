"""The WSGI application every web server runs: Granian in production (docker/start-web), Django's
runserver under ``make run``, gunicorn if an operator prefers it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# The request's own keys (PEP 3333 and CGI); besides them only headers (HTTP_*) and the servers'
# own dotted keys (wsgi.input, gunicorn.socket, ...) go on to Django.
REQUEST_KEYS = frozenset(
    {
        "AUTH_TYPE",
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "GATEWAY_INTERFACE",
        "PATH_INFO",
        "PATH_TRANSLATED",
        "QUERY_STRING",
        "RAW_URI",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_PORT",
        "REMOTE_USER",
        "REQUEST_METHOD",
        "REQUEST_URI",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
    }
)

django_application = get_wsgi_application()


def application(environ, start_response):
    # Granian and wsgiref (runserver) start every request's environ from a copy of the process
    # environment, as CGI did. That would put DATABASE_URL, DJANGO_SECRET_KEY and
    # HERALD_ENCRYPTION_KEYS into request.META, where a debug page, an error report or any future
    # code that logs META would show them. An allowlist rather than os.environ's keys at start-up:
    # it also drops what was added to the environment later.
    for key in [k for k in environ if k not in REQUEST_KEYS and not k.startswith("HTTP_") and "." not in k]:
        del environ[key]
    return django_application(environ, start_response)
