"""CSV import of players: the columns ``csv_export`` writes (players/exports.py), upserted on
``(app, identifier)``, so that an export can be imported again, into the same app or another.

How a file is processed (``import_file``), one chunk of about ``HERALD_CSV_IMPORT_CHUNK_BYTES``
(8 MiB) at a time, each chunk in its own transaction, so that progress is visible while it runs
and memory stays flat:

1. The header names the columns (any of the export's; ``identifier`` and ``device_type`` are
   required). The rest of the file (gzip or plain) is cut at line ends that are not inside a
   quoted field: the number of ``"`` before a cut is even.
2. PostgreSQL parses each chunk itself: ``COPY import_rows FROM STDIN (FORMAT csv)`` into a
   temporary table of text columns, numbered in file order. A chunk that COPY refuses (a row with
   too many or too few fields, bytes that are not UTF-8, a NUL) is parsed again with Python's
   ``csv`` module, so that each bad row gets its own error and the good rows still go in.
3. Identifiers that need Python's checks (email, SMS, web push endpoint URLs) go through
   ``normalize_identifier``, the same function as ``POST /players``; push tokens are checked in SQL.
4. One ``INSERT … SELECT`` types and checks every column in SQL, a regular expression guarding
   each cast. A value that passes its expression and still does not cast (a bad JSON, February 30,
   a malformed IPv6 address) fails the statement; the chunk is then checked again with
   exception-catching cast functions (slower, per row), so one bad value never costs more than
   its chunk's speed.
5. ``INSERT … ON CONFLICT (app_id, identifier) DO UPDATE`` writes the good rows; the last row of an
   identifier wins, and an update that changes nothing is skipped.
6. Steps 2 to 5 run in ``HERALD_CSV_IMPORT_CONNECTIONS`` sessions at once (2 by default), each
   writing the players of its share of the identifiers (``ChunkWriters``).

Semantics: columns present in the header are written; columns absent are left as they are (or
get the model's default for a new player). An empty cell is NULL for nullable columns and an
error for required numbers and dates; empty ``tags`` is ``{}``. ``tags`` replace the player's
tags. ``id`` is kept for a new player unless another player has it; an existing player keeps its id.

The SQL is built as text (ruff S608 is silenced where it is): what is interpolated is only column
names checked against ``COLUMNS``, the app's UUID and integers; the file's values travel by COPY.

Hand-written rather than through a library (django-import-export): it imports through model
instances, row by row, which is two orders of magnitude slower than COPY for a million rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from django.conf import settings
from django.db import DataError, connection, transaction

from core.api.errors import ApiError
from players.exports import DEFAULT_COLUMNS, EXTRA_COLUMNS
from players.validation import MAX_IDENTIFIER_LENGTH, MAX_TAGS_BYTES, normalize_identifier

COLUMNS = (*DEFAULT_COLUMNS, *EXTRA_COLUMNS)
REQUIRED_COLUMNS = ("identifier", "device_type")
CHECK_FIRST = {"device_type": 0, "identifier": 1}
MAX_ROW_BYTES = 1024 * 1024  # a longer "row" means an unterminated quote
MAX_HEADER_BYTES = 4096
MAX_ERRORS = 100
GZIP_MAGIC = b"\x1f\x8b"

# Device types whose identifiers Python checks (email_validator, phonenumbers, the SSRF guard).
PYTHON_CHECKED_TYPES = (11, 14)
WEB_ENDPOINT_TYPES = (5, 7, 8)

_SURROGATE_OR_NUL = re.compile("[\x00\udc80-\udcff]")

# Types of the checked values (wide enough to check ranges before the final cast).
INT4 = (-2147483648, 2147483647)
UINT4 = (0, 2147483647)
UINT8 = (0, 9223372036854775807)


class ImportFileError(ValueError):
    """The file cannot be imported at all (the job fails with this message)."""


# --- the file --------------------------------------------------------------------------------


def open_source(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(the raw file, a reader of its content): gzip is recognised by its magic bytes."""
    raw = path.open("rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    raw.seek(0)
    return raw, raw


def read_header(stream: BinaryIO) -> list[str]:
    """The column names of the first line, checked: known, unique, the required ones present."""
    try:
        line = stream.readline(MAX_HEADER_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ImportFileError(f"The file is not a valid gzip or CSV file ({exc})") from exc
    if len(line) > MAX_HEADER_BYTES:
        raise ImportFileError(f"The header line is longer than {MAX_HEADER_BYTES} bytes")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError("The header line is not UTF-8 text") from exc
    names = [name.strip().lower() for name in next(csv.reader([text]), [])]
    if not names or names == [""]:
        raise ImportFileError(
            f"The file is empty: the first line must name the columns ({', '.join(COLUMNS)})"
        )
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"Unknown column {unknown[0]!r} in the header; the columns are those of csv_export: "
            f"{', '.join(COLUMNS)}"[:500]
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ImportFileError(f"Column {duplicated[0]!r} appears twice in the header")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise ImportFileError(f"The header must name the column {missing[0]!r}")
    return names


def header_of(path: Path) -> list[str]:
    raw, stream = open_source(path)
    with raw:
        return read_header(stream)


def chunks(stream: BinaryIO, size: int | None = None) -> Iterator[bytes]:
    """The rest of the file in pieces of about ``size`` bytes, each ending at the end of a CSV
    row: at a newline preceded by an even number of double quotes (in CSV a quote inside a quoted
    field is doubled, so the parity says whether a position is inside quotes)."""
    size = size or settings.HERALD_CSV_IMPORT_CHUNK_BYTES
    carry = b""
    while True:
        try:
            block = stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportFileError(f"The file is damaged (gzip: {exc})") from exc
        if not block:
            if carry:
                yield carry
            return
        data = carry + block
        cut = data.rfind(b"\n")
        while cut >= 0 and data.count(b'"', 0, cut) % 2:
            cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            if len(data) > size + MAX_ROW_BYTES:
                raise ImportFileError(
                    f"A row is longer than {MAX_ROW_BYTES} bytes (an unterminated quoted field?)"
                )
            carry = data
            continue
        yield data[: cut + 1]
        carry = data[cut + 1 :]


# --- SQL for the columns ---------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _got(raw: str) -> str:
    # An empty cell is NULL: coalesce, or the whole message (and so the error) would be NULL.
    return f"' (got ' || quote_literal(coalesce(left({raw}, 40), '')) || ')'"


@dataclass
class Target:
    """A players_player column written from the file."""

    name: str
    checked_type: str  # its type in import_checked (wide enough to check before narrowing)
    final: str  # SQL reading it from import_checked as "c", narrowed to the table's type


@dataclass
class ColumnSql:
    typed: list[tuple[str, str]] = field(default_factory=list)  # (level-1 expression, alias)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (condition, message expression)
    targets: list[Target] = field(default_factory=list)


# Values that certainly cast: in the careful pass, these skip the exception-catching function.
SURE = {
    "bigint": r"^[+-]?\d{1,18}$",
    "uuid": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
    "numeric": r"^[+-]?\d{1,30}(\.\d{0,30})?$",
    "float8": r"^[+-]?\d{1,15}(\.\d{1,15})?$",
}
CAST_TYPES = ("bigint", "numeric", "uuid", "timestamptz", "inet", "jsonb", "float8")
TRUE_WORDS = "('t', 'true', '1', 'yes', 'y')"
FALSE_WORDS = "('f', 'false', '0', 'no', 'n')"
LOWER = "abcdefghijklmnopqrstuvwxyz"


def _trimmed(raw: str) -> str:
    return f"nullif(btrim({raw}, E' \\t\\r\\n'), '')"


def _cast(value: str, kind: str, safe: bool) -> str:
    """``value::kind``. The first pass casts plainly: one bad value fails the chunk's statement,
    which is then run again with ``safe``: a value that certainly casts is cast plainly, any
    other goes through ``pg_temp.herald_import_<kind>``, NULL when it does not cast. The valid
    values are the same in both passes (whatever PostgreSQL's cast accepts)."""
    if not safe:
        return f"({value})::{kind}"
    tried = f"pg_temp.herald_import_{kind}({value})"
    sure = SURE.get(kind)
    if sure is None:
        return tried
    return f"CASE WHEN {value} ~ '{sure}' THEN ({value})::{kind} ELSE {tried} END"


def _int_column(
    name: str, bounds: tuple[int, int], *, required: bool, final_type: str, safe: bool
) -> ColumnSql:
    raw, alias = f"r.{_q(name)}", f"t_{name}"
    value = _trimmed(raw)
    lo, hi = bounds
    message = (
        f"'{name} must be a whole number from 0 to {hi}'" if lo >= 0 else f"'{name} must be a whole number'"
    )
    bad = f"{alias} IS NULL OR {alias} NOT BETWEEN {lo} AND {hi}"
    if not required:
        bad = f"{value} IS NOT NULL AND ({bad})"
    return ColumnSql(
        typed=[(_cast(value, "bigint", safe), alias)],
        checks=[(bad, f"{message} || {_got(raw)}")],
        targets=[Target(name, "bigint", f"c.{_q(name)}::{final_type}")],
    )


def _text_column(name: str, max_length: int) -> ColumnSql:
    raw = f"r.{_q(name)}"
    return ColumnSql(
        typed=[(f"nullif({raw}, '')", f"t_{name}")],
        checks=[(f"length({raw}) > {max_length}", f"'{name} must be at most {max_length} characters'")],
        targets=[Target(name, "text", f"c.{_q(name)}")],
    )


def _bool_column(name: str, *, required: bool) -> ColumnSql:
    raw, alias = f"r.{_q(name)}", f"t_{name}"
    value = f"lower({_trimmed(raw)})"
    typed = f"CASE WHEN {value} IN {TRUE_WORDS} THEN true WHEN {value} IN {FALSE_WORDS} THEN false END"
    bad = f"{alias} IS NULL" if required else f"{value} IS NOT NULL AND {alias} IS NULL"
    return ColumnSql(
        typed=[(typed, alias)],
        checks=[(bad, f"'{name} must be t or f (true or false)' || {_got(raw)}")],
        targets=[Target(name, "boolean", f"c.{_q(name)}")],
    )


def _timestamp_column(name: str, safe: bool) -> ColumnSql:
    """Any date and time PostgreSQL reads (csv_export writes ``2026-01-31 12:00:00``, in UTC), or
    unix seconds."""
    raw, alias = f"r.{_q(name)}", f"t_{name}"
    value = _trimmed(raw)
    typed = (
        f"CASE WHEN length({value}) <= 11 AND translate({value}, '0123456789', '') = '' "
        f"THEN to_timestamp(({value})::bigint) ELSE {_cast(value, 'timestamptz', safe)} END"
    )
    message = f"'{name} must be a UTC date and time like 2026-01-31 12:00:00, or unix seconds'"
    return ColumnSql(
        typed=[(typed, alias)],
        checks=[(f"{alias} IS NULL OR NOT isfinite({alias})", f"{message} || {_got(raw)}")],
        targets=[Target(name, "timestamptz", f"c.{_q(name)}")],
    )


def _device_type(raw: str, safe: bool) -> str:
    return _cast(_trimmed(raw), "bigint", safe)


DEVICE_TYPE_RAW = 'r."device_type"'


def _identifier_column(safe: bool) -> ColumnSql:
    # Device types 0 (iOS) and 9 (macOS) are APNs tokens: OneSignal strips "<", ">" and spaces.
    raw = 'r."identifier"'
    value = f"btrim({raw}, E' \\t\\r\\n\\f\\v')"
    typed = (
        "CASE WHEN f.row_no IS NOT NULL THEN f.identifier "
        f"WHEN {_device_type(DEVICE_TYPE_RAW, safe)} IN (0, 9) "
        f"THEN nullif(lower(regexp_replace({value}, '[^0-9A-Za-z]', '', 'g')), '') "
        f"ELSE nullif({value}, '') END"
    )
    apns = (
        "t_identifier ~ '^[0-9a-f]+$' AND length(t_identifier) BETWEEN 32 AND 400 "
        "AND length(t_identifier) % 2 = 0"
    )
    return ColumnSql(
        typed=[(typed, "t_identifier")],
        checks=[
            ("fix_error IS NOT NULL", "fix_error"),
            ("t_identifier IS NULL", "'identifier is required'"),
            (
                f"length(t_identifier) > {MAX_IDENTIFIER_LENGTH}",
                f"'identifier must be at most {MAX_IDENTIFIER_LENGTH} characters'",
            ),
            (
                f"NOT fixed AND t_device_type IN (0, 9) AND NOT ({apns})",
                "'identifier is not a valid APNs device token (hexadecimal)'",
            ),
            (
                "NOT fixed AND t_identifier ~ '[^!-~]'",
                "'identifier must not contain spaces or control characters'",
            ),
        ],
        targets=[Target("identifier", "text", "c.identifier")],
    )


def _tags_column(safe: bool) -> ColumnSql:
    raw = 'r."tags"'
    value = _trimmed(raw)
    long_parts = (
        "EXISTS (SELECT 1 FROM jsonb_each_text(t_tags) e WHERE length(e.key) > 128 OR length(e.value) > 1024)"
    )
    # Numbers and booleans become strings, as POST /players stores them; null drops a key.
    normalized = """CASE WHEN jsonb_path_exists(c.tags, 'strict $.* ? (@.type() != "string")') THEN (
        SELECT coalesce(jsonb_object_agg(e.key, CASE jsonb_typeof(e.value) WHEN 'string'
            THEN e.value ELSE to_jsonb(e.value #>> '{}') END), '{}'::jsonb)
        FROM jsonb_each(c.tags) e WHERE jsonb_typeof(e.value) <> 'null')
    ELSE c.tags END"""
    return ColumnSql(
        typed=[
            (f"CASE WHEN {value} IS NULL THEN '{{}}'::jsonb ELSE {_cast(value, 'jsonb', safe)} END", "t_tags")
        ],
        checks=[
            (
                "t_tags IS NULL OR jsonb_typeof(t_tags) <> 'object'",
                f"'tags must be a JSON object of string keys and string values' || {_got(raw)}",
            ),
            (
                f"octet_length({raw}) > {MAX_TAGS_BYTES}",
                f"'a player''s tags must total at most {MAX_TAGS_BYTES} bytes'",
            ),
            (
                """jsonb_path_exists(t_tags, 'strict $.* ? (@.type() == "array" || @.type() == "object")')""",
                "'tag values must be strings or numbers, not arrays or objects'",
            ),
            (
                # Only a long JSON text can hold a long key or value: the cheap test comes first.
                f"t_tags ? '' OR (octet_length({raw}) > 130 AND {long_parts})",
                "'tag keys must be 1 to 128 characters and tag values at most 1024'",
            ),
        ],
        targets=[Target("tags", "jsonb", normalized)],
    )


def _location_column(safe: bool) -> ColumnSql:
    raw = 'r."location"'
    value = _trimmed(raw)
    part = "btrim(split_part({value}, ',', {n}))"
    lat = _cast(part.format(value=value, n=1), "float8", safe)
    long = _cast(part.format(value=value, n=2), "float8", safe)
    one_comma = f"length({value}) - length(replace({value}, ',', '')) = 1"
    return ColumnSql(
        typed=[
            (f"CASE WHEN {one_comma} THEN {lat} END", "t_lat"),
            (f"CASE WHEN {one_comma} THEN {long} END", "t_long"),
        ],
        checks=[
            (
                f"{value} IS NOT NULL AND (t_lat IS NULL OR t_long IS NULL OR t_lat NOT BETWEEN -90 AND 90 "
                "OR t_long NOT BETWEEN -180 AND 180)",
                f"'location must be \"lat,long\" (degrees)' || {_got(raw)}",
            )
        ],
        targets=[Target("lat", "float8", "c.lat"), Target("long", "float8", "c.long")],
    )


def column_sql(name: str, *, safe: bool) -> ColumnSql:
    """Level-1 typed expressions, checks (in order) and targets of one CSV column; ``safe`` for
    the careful pass (see ``_cast``)."""
    raw = f"r.{_q(name)}"
    value = _trimmed(raw)
    if name == "id":
        return ColumnSql(
            typed=[(_cast(value, "uuid", safe), "t_id")],
            checks=[(f"{value} IS NOT NULL AND t_id IS NULL", f"'id must be a UUID' || {_got(raw)}")],
            targets=[Target("id", "uuid", "c.id")],
        )
    if name == "device_type":
        return ColumnSql(
            typed=[(_device_type(raw, safe), "t_device_type")],
            checks=[
                (
                    "t_device_type IS NULL OR t_device_type NOT BETWEEN 0 AND 14",
                    f"'device_type must be an integer from 0 to 14' || {_got(raw)}",
                )
            ],
            targets=[Target("device_type", "bigint", "c.device_type::smallint")],
        )
    if name == "identifier":
        return _identifier_column(safe)
    if name == "session_count":
        return _int_column(name, UINT4, required=True, final_type="integer", safe=safe)
    if name == "timezone":
        return _int_column(name, INT4, required=False, final_type="integer", safe=safe)
    if name in ("badge_count", "notification_types"):
        return _int_column(name, INT4, required=True, final_type="integer", safe=safe)
    if name == "playtime":
        return _int_column(name, UINT8, required=True, final_type="bigint", safe=safe)
    if name == "language":
        # A 2-letter code is tested without a regular expression (they cost about 1 µs each).
        valid = (
            f"CASE WHEN length({value}) = 2 THEN translate({value}, '{LOWER}', '') = '' "
            f"ELSE {value} ~ '^[a-z]{{2}}-[A-Za-z]{{2,4}}$' END"
        )
        return ColumnSql(
            typed=[(value, "t_language")],
            checks=[
                (
                    f"NOT ({valid})",
                    f"'language must be a 2-letter code such as en, or zh-Hans / zh-Hant' || {_got(raw)}",
                )
            ],
            targets=[Target("language", "text", "c.language")],
        )
    if name == "country":
        return ColumnSql(
            typed=[(f"upper({value})", "t_country")],
            checks=[
                (
                    f"length({value}) <> 2 OR translate(lower({value}), '{LOWER}', '') <> ''",
                    f"'country must be 2 letters' || {_got(raw)}",
                )
            ],
            targets=[Target("country", "text", "c.country")],
        )
    if name in ("game_version", "device_os"):
        return _text_column(name, 64)
    if name in ("device_model", "ad_id"):
        return _text_column(name, 100)
    if name == "external_user_id":
        return _text_column(name, 255)
    if name in ("web_auth", "web_p256"):
        return _text_column(name, 200)
    if name == "tags":
        return _tags_column(safe)
    if name in ("last_active", "created_at"):
        return _timestamp_column(name, safe)
    if name == "amount_spent":
        return ColumnSql(
            typed=[(f"round({_cast(value, 'numeric', safe)}, 2)", "t_amount_spent")],
            checks=[
                (
                    "t_amount_spent IS NULL OR t_amount_spent = 'NaN'::numeric "
                    "OR abs(t_amount_spent) >= 1e12",
                    f"'amount_spent must be a decimal number below 1000000000000' || {_got(raw)}",
                )
            ],
            targets=[Target("amount_spent", "numeric", "c.amount_spent::numeric(14, 2)")],
        )
    if name == "invalid_identifier":
        return _bool_column(name, required=True)
    if name == "rooted":
        return _bool_column(name, required=False)
    if name == "location":
        return _location_column(safe)
    if name == "ip":
        return ColumnSql(
            typed=[(_cast(value, "inet", safe), "t_ip")],
            checks=[
                (
                    f"{value} IS NOT NULL AND (t_ip IS NULL "
                    "OR masklen(t_ip) <> (CASE family(t_ip) WHEN 4 THEN 32 ELSE 128 END))",
                    f"'ip must be an IPv4 or IPv6 address' || {_got(raw)}",
                )
            ],
            targets=[Target("ip", "inet", "c.ip")],
        )
    raise ValueError(name)  # pragma: no cover - COLUMNS and this function agree


# The careful pass's casts: NULL instead of an error. Temporary functions (pg_temp) last as long as
# the session and need no migration; each call is a subtransaction, hence only in that pass.
SAFE_CAST_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION pg_temp.herald_import_{kind}(value text) RETURNS {kind}
    LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN RETURN value::{kind}; EXCEPTION WHEN others THEN RETURN NULL; END $$"""
    for kind in CAST_TYPES
]

# What a new player gets for a NOT NULL column the file does not carry.
INSERT_DEFAULTS = {
    "session_count": "1",
    "tags": "'{}'::jsonb",
    "playtime": "0",
    "amount_spent": "0",
    "badge_count": "0",
    "notification_types": "1",
    "invalid_identifier": "false",
    "unsubscribed_reason": "''",
    "location_meta": "'{}'::jsonb",
    "created_at": "now()",
    "last_active": "now()",
}


@dataclass
class Statements:
    """The SQL of one import, built once from its header."""

    names: list[str]
    create: list[str]
    copy: str
    copy_with_errors: str
    fixups: str
    check: Callable[[bool], str]
    upserts: list[str]  # one per connection, each for its share of the identifiers


def statements(app_id: str, names: list[str], shares: int = 1) -> Statements:
    app = f"'{app_id}'::uuid"
    raw_columns = ", ".join(f"{_q(name)} text" for name in names)
    parts = {name: column_sql(name, safe=False) for name in names}
    targets = [t for name in names for t in parts[name].targets]
    checked_columns = ", ".join(f"{_q(t.name)} {t.checked_type}" for t in targets)
    create = [
        "DROP TABLE IF EXISTS pg_temp.import_rows, pg_temp.import_fixups, pg_temp.import_checked",
        f"CREATE TEMP TABLE import_rows (row_no bigint GENERATED BY DEFAULT AS IDENTITY, "
        f"{raw_columns}, parse_error text)",
        "CREATE TEMP TABLE import_fixups (row_no bigint PRIMARY KEY, identifier text, error text)",
        f"CREATE TEMP TABLE import_checked (row_no bigint, error text, {checked_columns})",
        *SAFE_CAST_FUNCTIONS,
    ]
    column_list = ", ".join(_q(name) for name in names)
    raw_list = ", ".join(f"r.{_q(name)}" for name in names)

    def check(safe: bool) -> str:
        sql = {name: column_sql(name, safe=safe) for name in names}
        typed = ", ".join(f"{expr} AS {_q(alias)}" for name in names for expr, alias in sql[name].typed)
        # The CASE stops at the first failing check: device_type's first, as identifier's read it.
        ordered = sorted(names, key=lambda name: CHECK_FIRST.get(name, len(CHECK_FIRST)))
        checks = " ".join(
            f"WHEN {condition} THEN {message}" for name in ordered for condition, message in sql[name].checks
        )
        level2 = ", ".join(f"{_q('t_' + t.name)}" for t in targets)
        # t_lat and t_long come from the location column.
        return (
            f"INSERT INTO import_checked (row_no, error, {', '.join(_q(t.name) for t in targets)}) "  # noqa: S608
            f"SELECT row_no, CASE WHEN parse_error IS NOT NULL THEN parse_error {checks} END, {level2} "
            f"FROM (SELECT r.row_no, r.parse_error, {raw_list}, f.row_no IS NOT NULL AS fixed, "
            f"f.identifier AS fix_identifier, f.error AS fix_error, {typed} "
            f"FROM import_rows r LEFT JOIN import_fixups f ON f.row_no = r.row_no OFFSET 0) AS r"
        )

    present = {t.name for t in targets}
    defaults = {k: v for k, v in INSERT_DEFAULTS.items() if k not in present}
    insert_columns = ["id", "app_id", *[t.name for t in targets if t.name != "id"], *defaults]
    id_expr = "gen_random_uuid()"
    if "id" in present:
        # The file's id, unless another player holds it (another app's, or another identifier).
        id_expr = (
            "CASE WHEN c.id IS NULL OR c.id_rank > 1 OR EXISTS (SELECT 1 FROM players_player taken "  # noqa: S608
            f"WHERE taken.id = c.id AND NOT (taken.app_id = {app} AND taken.identifier = c.identifier)) "
            "THEN gen_random_uuid() ELSE c.id END"
        )
    select = [
        id_expr,
        app,
        *[t.final for t in targets if t.name != "id"],
        *defaults.values(),
    ]
    updated = [t.name for t in targets if t.name not in ("id", "identifier")]
    # The last row of an identifier wins; of rows sharing an id, the last keeps it.
    source = (
        "SELECT DISTINCT ON (identifier) * FROM import_checked WHERE error IS NULL "
        "ORDER BY identifier, row_no DESC"
    )
    if "id" in present:
        source = (
            "SELECT *, row_number() OVER (PARTITION BY id ORDER BY row_no DESC) AS id_rank "  # noqa: S608
            f"FROM ({source}) AS latest"
        )

    def share(part: int) -> str:
        if shares == 1:
            return source
        # By the identifier as stored (after Python's checks), so that every row of one player
        # goes through one connection, in file order; a NULL identifier goes to the first.
        return (
            f"SELECT * FROM ({source}) AS everyone "  # noqa: S608
            f"WHERE (coalesce(hashtext(identifier), 0) & 2147483647) % {int(shares)} = {int(part)}"
        )

    changed = ""
    if updated:
        changed = (
            f"WHERE ({', '.join('p.' + _q(n) for n in updated)}) IS DISTINCT FROM "
            f"({', '.join('EXCLUDED.' + _q(n) for n in updated)})"
        )
    set_clause = (
        ", ".join(f"{_q(n)} = EXCLUDED.{_q(n)}" for n in updated) or "identifier = EXCLUDED.identifier"
    )
    upserts = [
        f"WITH written AS (INSERT INTO players_player AS p ({', '.join(_q(c) for c in insert_columns)}) "  # noqa: S608
        f"SELECT {', '.join(select)} FROM ({share(part)}) AS c "
        "ON CONFLICT (app_id, identifier) WHERE identifier IS NOT NULL AND NOT (identifier = '') "
        f"DO UPDATE SET {set_clause} {changed} RETURNING (xmax = 0) AS created) "
        "SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM written"
        for part in range(shares)
    ]
    fixup_types = ", ".join(str(t) for t in PYTHON_CHECKED_TYPES)
    web_types = ", ".join(str(t) for t in WEB_ENDPOINT_TYPES)
    # A separate query, that must not fail on a bad device_type: guarded by an expression.
    device_type = _cast(_trimmed("device_type"), "bigint", safe=True)
    fixups = (
        f"SELECT row_no, dt, identifier FROM (SELECT row_no, identifier, {device_type} AS dt "  # noqa: S608
        "FROM import_rows WHERE parse_error IS NULL OFFSET 0) AS r "
        f"WHERE dt IN ({fixup_types}) OR (dt IN ({web_types}) AND identifier ~* '^\\s*https?://')"
    )
    return Statements(
        names=names,
        create=create,
        copy=f"COPY import_rows ({column_list}) FROM STDIN (FORMAT csv)",
        copy_with_errors=f"COPY import_rows ({column_list}, parse_error) FROM STDIN",
        fixups=fixups,
        check=check,
        upserts=upserts,
    )


# --- running an import -----------------------------------------------------------------------


@dataclass
class ChunkResult:
    rows: int
    created: int
    updated: int
    failed: int
    errors: list[dict]  # the first ones of this chunk, {"row", "error"}


def import_file(
    *,
    app_id: str,
    path: Path,
    on_chunk: Callable[[ChunkResult, int], bool],
    max_errors: int = MAX_ERRORS,
    connections: int | None = None,
) -> None:
    """Import ``path`` into the app, chunk by chunk. After each chunk's commit,
    ``on_chunk(result, bytes_read)`` records progress; returning False stops the import (the job
    is no longer ours). Raises ImportFileError when the file cannot be read on.

    ``connections`` (default ``HERALD_CSV_IMPORT_CONNECTIONS``) PostgreSQL sessions write each
    chunk together, each the players of its share of the identifiers (``ChunkWriters``)."""
    raw, stream = open_source(path)
    with raw:
        names = read_header(stream)
        with ChunkWriters(statements(app_id, names, import_connections(connections))) as writers:
            next_row, errors_left = 1, max_errors
            for data in chunks(stream):
                result = writers.write(data, next_row, errors_left)
                next_row += result.rows
                errors_left = max(0, errors_left - len(result.errors))
                if not on_chunk(result, raw.tell()):
                    return


def import_connections(wanted: int | None) -> int:
    wanted = settings.HERALD_CSV_IMPORT_CONNECTIONS if wanted is None else wanted
    # Other sessions cannot see what the caller's open transaction wrote (its app, in tests).
    if connection.in_atomic_block:
        return 1
    return max(1, wanted)


class ChunkWriters:
    """Each chunk is written by ``len(sql.upserts)`` sessions at once: this thread's, and one more
    per extra share, each in a thread of its own (a Django connection belongs to its thread).

    Every session copies and checks the whole chunk into its own temporary tables (cheap next to
    the upsert, and it keeps the sessions independent), then upserts only the players whose stored
    identifier hashes to its share. So one player's rows all go through one session, in file
    order, and the last row still wins; no two sessions ever write the same identifier, so they
    never wait for each other on its unique index. The file's ``id`` stays unique because every
    session ranks it over the whole chunk, and each chunk starts only when every session has
    committed the previous one (``write`` waits for all). The first session's count of rows, and
    its errors, are the chunk's; the created and updated players are summed.

    The sessions commit separately (one transaction across them would need two-phase commit, off
    in a default PostgreSQL). So an import that fails, or is stopped, inside a chunk may leave the
    other sessions' players of that chunk written, beside the chunks before it; running the file
    again writes the same result, as after any failed import.

    Two sessions are PostgreSQL's own insert on both cores: one session's upsert keeps one core
    busy, and the index maintenance of the others' rows runs beside it (BENCHMARKS.md, Bulk)."""

    def __init__(self, sql: Statements):
        self.sql = sql
        self.helpers = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"csv-import-{part}")
            for part in range(1, len(sql.upserts))
        ]

    def __enter__(self) -> ChunkWriters:
        try:
            for future in [helper.submit(_create_tables, self.sql) for helper in self.helpers]:
                future.result()
            _create_tables(self.sql)
        except BaseException:
            self.__exit__()
            raise
        return self

    def write(self, data: bytes, first_row: int, errors_wanted: int) -> ChunkResult:
        futures = [
            helper.submit(_import_chunk, self.sql, data, first_row, 0, part)
            for part, helper in enumerate(self.helpers, start=1)
        ]
        try:
            result = _import_chunk(self.sql, data, first_row, errors_wanted, 0)
        finally:
            others = [future.result() for future in futures]  # all have ended before anything moves on
        for other in others:
            result.created += other.created
            result.updated += other.updated
        return result

    def __exit__(self, *exc_info) -> None:
        for helper in self.helpers:
            helper.submit(_drop_tables, self.sql, close=True)
            helper.shutdown(wait=True)
        _drop_tables(self.sql, close=False)


def _create_tables(sql: Statements) -> None:
    with connection.cursor() as cursor:
        for statement in sql.create:
            cursor.execute(statement)


def _drop_tables(sql: Statements, *, close: bool) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.create[0])
    finally:
        if close:  # a helper thread's own connection, which nothing else would close
            connection.close()


@transaction.atomic
def _import_chunk(
    sql: Statements, data: bytes, first_row: int, errors_wanted: int, part: int = 0
) -> ChunkResult:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("TRUNCATE import_rows, import_fixups, import_checked")
        _copy_chunk(cursor, sql, data, first_row)
        _fix_identifiers(cursor, sql)
        try:
            with transaction.atomic():
                cursor.execute(sql.check(False))
        except DataError:
            # A value passed its expression and still did not cast: check this chunk row by row.
            cursor.execute(sql.check(True))
        cursor.execute("SELECT count(*), count(error) FROM import_checked")
        rows, failed = cursor.fetchone()
        errors = []
        if failed and errors_wanted:
            cursor.execute(
                "SELECT row_no, error FROM import_checked WHERE error IS NOT NULL ORDER BY row_no LIMIT %s",
                [int(errors_wanted)],
            )
            errors = [{"row": row, "error": error} for row, error in cursor.fetchall()]
        created = updated = 0
        if rows > failed:
            cursor.execute(sql.upserts[part])
            created, updated = cursor.fetchone()
    return ChunkResult(rows=rows, created=created, updated=updated, failed=failed, errors=errors)


def _copy_chunk(cursor, sql: Statements, data: bytes, first_row: int) -> None:
    restart = f"SELECT setval(pg_get_serial_sequence('import_rows', 'row_no'), {int(first_row)}, false)"
    cursor.execute(restart)
    try:
        with transaction.atomic(), cursor.connection.cursor() as raw, raw.copy(sql.copy) as copy:
            copy.write(data)
        return
    except psycopg.errors.DataError:  # COPY goes to psycopg directly, not through Django's wrapper
        pass
    # COPY refused the chunk: parse it in Python, one row at a time, so bad rows get their own error.
    cursor.execute(restart)
    width = len(sql.names)
    with cursor.connection.cursor() as raw, raw.copy(sql.copy_with_errors) as copy:
        for row, problem in _parse_rows(data, width):
            copy.write_row([*row, problem] if problem is None else [None] * width + [problem])


def _parse_rows(data: bytes, width: int) -> Iterator[tuple[list[str], str | None]]:
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_ROW_BYTES)
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield [], f"this row is not valid CSV ({exc})"
                continue
            if not row:
                continue  # a blank line
            if len(row) != width:
                yield [], f"expected {width} fields as in the header, found {len(row)}"
            elif _SURROGATE_OR_NUL.search("\x1f".join(row)):
                yield [], "this row is not UTF-8 text (or contains a NUL character)"
            else:
                yield row, None
    finally:
        csv.field_size_limit(limit)


def _fix_identifiers(cursor, sql: Statements) -> None:
    """Email, SMS and web push endpoint identifiers: the same checks as POST /players."""
    cursor.execute(sql.fixups)
    rows = cursor.fetchall()
    if not rows:
        return
    with (
        cursor.connection.cursor() as raw,
        raw.copy("COPY import_fixups (row_no, identifier, error) FROM STDIN") as copy,
    ):
        for row_no, device_type, identifier in rows:
            try:
                copy.write_row((row_no, normalize_identifier(device_type, identifier or ""), None))
            except ApiError as exc:
                errors = exc.body.get("errors") or ["identifier is not valid"]
                copy.write_row((row_no, None, str(errors[0])[:300]))
