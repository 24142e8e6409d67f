"""Seed a tenant on a database that is not the test database (``tests.reliability`` PostgreSQL
restart test): ``DATABASE_URL=... python -m tests.reliability.pg_driver <count> <service-account.json>``
prints ``{"app_id", "app_key", "tokens": [...]}``."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")


def main() -> None:
    import django

    django.setup()
    from tests.conftest import make_tenant
    from tests.reliability.stack import FCM_PROJECT_ID, seed_android_players

    count, account_path = int(sys.argv[1]), sys.argv[2]
    tenant = make_tenant()
    with open(account_path) as account:
        tenant.app.fcm_service_account_json = account.read()
    tenant.app.fcm_project_id = FCM_PROJECT_ID
    tenant.app.save()
    tokens = seed_android_players(tenant.app, count)
    print(json.dumps({"app_id": str(tenant.app.pk), "app_key": tenant.app_key, "tokens": tokens}))


if __name__ == "__main__":
    main()
