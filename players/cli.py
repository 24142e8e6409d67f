"""What manage.py import_players, export_players and seed_players share: the --app lookup, the
PostgreSQL check, the progress switches and the bar, drawn on the command's own stderr."""

from __future__ import annotations

import argparse
import uuid

from django.core.management.base import CommandError

from apps.models import App
from core.api.errors import ApiError
from core.progress import progress_bar
from players.exports import copy_unsupported


def add_app_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", required=True, metavar="APP_ID", help="the app's id (a UUID)")


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no summary; errors only"
    )


def app_from_option(value: str) -> App:
    try:
        app_id = uuid.UUID(str(value))
    except ValueError:
        raise CommandError(f"--app: {value!r} is not an app id (a UUID)") from None
    app = App.objects.filter(pk=app_id).first()
    if app is None:
        raise CommandError(f"--app: there is no app with id {app_id}")
    return app


def require_postgresql(what: str) -> None:
    """``what`` runs on PostgreSQL's COPY: refuse clearly on the embedded SQLite default."""
    problem = copy_unsupported(what)
    if problem:
        raise CommandError(problem)


def api_error_message(exc: ApiError) -> str:
    errors = exc.body.get("errors") if isinstance(exc.body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    return str(exc.body)


def bar_enabled(options: dict) -> bool | None:
    if options.get("quiet") or options.get("verbosity", 1) == 0:
        return False
    return options.get("progress")


def command_bar(command, options: dict, **kwargs):
    """A progress bar on the command's stderr (the stream itself: Django's OutputWrapper would
    end each of tqdm's redraws with a newline)."""
    stream = getattr(command.stderr, "_out", command.stderr)
    return progress_bar(enabled=bar_enabled(options), file=stream, **kwargs)
