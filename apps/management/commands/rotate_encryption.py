from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.models import App
from webhooks.models import Webhook


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential under the first key of HERALD_ENCRYPTION_KEYS. "
        "Rotation: prepend a new key, run this, then drop the old key."
    )

    def handle(self, *args, **options):
        rotated = 0
        for app in App.objects.iterator(chunk_size=500):
            # Loading decrypts with any configured key; saving encrypts with the first one.
            App.objects.filter(pk=app.pk).update(**{f: getattr(app, f) for f in App.SECRET_FIELDS})
            rotated += 1
        self.stdout.write(f"re-encrypted the credentials of {rotated} apps")
        hooks = 0
        for webhook in Webhook.objects.only("pk", "secret").iterator(chunk_size=500):
            Webhook.objects.filter(pk=webhook.pk).update(secret=webhook.secret)
            hooks += 1
        self.stdout.write(f"re-encrypted the signing secrets of {hooks} webhooks")
