"""`make run`'s embedded defaults (SQLite database and broker under a temporary var dir) in a
subprocess, for what must also work there: tests run on PostgreSQL otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        HERALD_VAR_DIR=str(var_dir),
        CELERY_BROKER_URL=f"sqla+sqlite:///{var_dir / 'broker.sqlite3'}",
        HERALD_GATEWAYSIM_CONTROL_URL="",
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
