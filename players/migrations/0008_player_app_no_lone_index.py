"""The lone ``app_id`` index of the app foreign key goes: every other index of the table starts
with the app, so it served no query and only cost writes. Only the index is dropped: Django's own
AlterField would also drop and re-add the foreign key, which checks every row again. On
PostgreSQL it is dropped CONCURRENTLY, so SDK writes to a large table never wait on it."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "players_player_app_id_e44f19ac"


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def drop_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX{_concurrently(schema_editor)} IF EXISTS {INDEX}")


def create_index(apps, schema_editor):
    schema_editor.execute(
        f"CREATE INDEX{_concurrently(schema_editor)} IF NOT EXISTS {INDEX} ON players_player (app_id)"
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("apps", "0004_safari_push_id"),
        ("players", "0007_csv_import"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="player",
                    name="app",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="players",
                        to="apps.app",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        ),
    ]
