from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from core.keys import IssuedKey, generate_key, key_matches, lookup_prefix


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def matching(self, plaintext: str):
        """The active key whose hash matches ``plaintext``, or None (constant-time compare)."""
        for candidate in self.active().filter(prefix=lookup_prefix(plaintext)):
            if key_matches(plaintext, candidate.digest):
                return candidate
        return None


class ApiKey(models.Model):
    """A hashed, labelled, revocable key. Subclasses add the tenant it belongs to."""

    KIND = ""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    label = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.label or 'key'} ({self.prefix}…, {state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def assign_new_secret(self) -> IssuedKey:
        issued = generate_key(self.KIND)
        self.prefix, self.digest = issued.prefix, issued.digest
        return issued
