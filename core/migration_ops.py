"""Migration operations that keep the embedded SQLite default working next to PostgreSQL."""

from __future__ import annotations

from django.contrib.postgres.indexes import PostgresIndex
from django.contrib.postgres.operations import AddIndexConcurrently


class AddIndexConcurrentlyWherePossible(AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL (a large table keeps taking writes). On other
    databases (SQLite, for `make run` with no configuration) plain indexes are created normally
    and PostgreSQL-only ones (GIN and friends) are skipped: they only serve PostgreSQL queries."""

    def _portable(self, schema_editor) -> bool:
        return schema_editor.connection.vendor != "postgresql"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not self._portable(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        if isinstance(self.index, PostgresIndex) or self.index.opclasses:
            return None
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index)
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not self._portable(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        if isinstance(self.index, PostgresIndex) or self.index.opclasses:
            return None
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index)
        return None
