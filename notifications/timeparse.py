"""OneSignal's ``send_after`` (JavaScript ``Date()``-like) and ``delivery_time_of_day`` formats."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone

from dateutil import parser as date_parser

# "API defaults to UTC -1100" when no zone is given (OneSignal spec 1.4.0).
DEFAULT_ZONE = timezone(timedelta(hours=-11))

_PAREN_ZONE = re.compile(r"\([^)]*\)")
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*([+-])(\d{1,2}):?(\d{2})?\b", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b", re.IGNORECASE)
_SEPT = re.compile(r"\bSept\b", re.IGNORECASE)
_TIME_OF_DAY = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?\s*$")


def parse_send_after(value: str) -> datetime | None:
    """An aware datetime, or None when the text is not a date OneSignal would accept."""
    text = _PAREN_ZONE.sub("", value).strip()
    # dateutil reads "GMT-0700" POSIX-style (as UTC+7): spell the offset out explicitly first.
    text = _GMT_OFFSET.sub(lambda m: f" {m[1]}{int(m[2]):02d}{m[3] or '00'}", text)
    text = _ORDINAL.sub(r"\1", text)
    text = _SEPT.sub("Sep", text)
    text = text.replace(",", " ")
    try:
        parsed = date_parser.parse(text)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=DEFAULT_ZONE)
    return parsed


def parse_time_of_day(value: str) -> time | None:
    match = _TIME_OF_DAY.match(value) if isinstance(value, str) else None
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    meridiem = (match[4] or "").lower()
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)
