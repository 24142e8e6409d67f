"""The lone ``app_id`` index of the app foreign key goes: every other index of the table starts
with the app, so it served no query and only cost writes. Only the index is dropped: Django's own
AlterField would also drop and re-add the foreign key, which checks every row again."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "players_player_app_id_e44f19ac"


class Migration(migrations.Migration):
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
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    reverse_sql=f"CREATE INDEX IF NOT EXISTS {INDEX} ON players_player (app_id)",
                ),
            ],
        ),
    ]
