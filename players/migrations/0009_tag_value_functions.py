"""Two SQL functions that read a tag as the filter language compares it (segments/filters.py,
onesignal-api.md §6.4): as a number when it is a decimal number of at most 1,000 characters, else
as text. Expression indexes on them (players/tag_indexes.py, ``manage.py tag_indexes``) make
numeric tag comparisons index scans for the keys an operator names.

Both are single-expression SQL functions marked IMMUTABLE, so PostgreSQL inlines them: a query and
an index written with the same call match after inlining, and a query costs no function call.
They are not STRICT, which would stop the inlining. The pattern and the length are frozen here on
purpose: an index built on the function must keep meaning what it meant when it was built.
"""

from django.db import migrations

NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"
IS_NUMBER = f"char_length(tags ->> key) <= 1000 AND (tags ->> key) ~ '{NUMBER}'"

CREATE = f"""
CREATE OR REPLACE FUNCTION herald_tag_number(tags jsonb, key text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN {IS_NUMBER} THEN (tags ->> key)::numeric END $$;

CREATE OR REPLACE FUNCTION herald_tag_text(tags jsonb, key text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN {IS_NUMBER} THEN NULL ELSE tags ->> key END $$;
"""

# CASCADE: the indexes built on the functions go with them; they mean nothing without them.
DROP = """
DROP FUNCTION IF EXISTS herald_tag_number(jsonb, text) CASCADE;
DROP FUNCTION IF EXISTS herald_tag_text(jsonb, text) CASCADE;
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("players", "0008_player_app_no_lone_index")]

    operations = [migrations.RunPython(create_functions, drop_functions, elidable=False)]
