from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from apps.demo import bootstrap_demo


class Command(BaseCommand):
    help = "Create (idempotently) a demo organization, staff user and app, and print fresh credentials."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="demo", help="Organization name (default: demo)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print one JSON object")

    def handle(self, *args, org: str, as_json: bool, **options):
        credentials = bootstrap_demo(org_name=org)
        if as_json:
            self.stdout.write(json.dumps(credentials.as_dict()))
            return
        for name, value in credentials.as_dict().items():
            self.stdout.write(f"{name:>15}: {value if value is not None else '(not available yet)'}")
