"""Property: the MobileFirst ``filter`` parser round-trips values through its escaping (§5).

``escape`` is written here from the contract: in a ``filter`` value list, a comma separates
values, ``\\,`` is a literal comma and ``\\\\`` a literal backslash. For any non-empty values:
``_split_values(escape(values)) == values``; for any string the parser accepts, escaping what
it returns gives the string back (the encoding is one-to-one); anything else is the 400
``FPWSE0007E``. End to end, a ``filter=userId==<escaped>`` query string, URL-encoded as a client
sends it, selects exactly the devices whose userId is one of the values.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.request import Request

from imfpush.api.listing import _split_values, parse_filters, text_field
from imfpush.errors import MfpError
from players.models import Player
from tests.factories import AppFactory

SHORT = settings(max_examples=300, deadline=None, derandomize=True, database=None)
LONG = settings(max_examples=5000, deadline=None, database=None)
DB_SHORT = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)

# Commas and backslashes often, anything else (but surrogates) sometimes.
CHARS = st.one_of(st.sampled_from([",", "\\", "a", "=", "@", " "]), st.characters(exclude_categories=["Cs"]))
VALUES = st.lists(st.text(CHARS, min_size=1, max_size=8), min_size=1, max_size=5)


def escape(values: list[str]) -> str:
    return ",".join(value.replace("\\", "\\\\").replace(",", "\\,") for value in values)


def check_round_trip(values: list[str]) -> None:
    assert _split_values(escape(values), "raw") == values


def check_parse_or_refuse(text: str) -> None:
    try:
        values = _split_values(text, text)
    except MfpError as error:
        assert error.status == 400 and error.code == "FPWSE0007E"
        return
    assert values and all(values)
    assert escape(values) == text


@SHORT
@given(VALUES)
def test_escaped_values_split_back_into_the_same_values(values):
    check_round_trip(values)


@SHORT
@given(st.text(CHARS, max_size=16))
def test_any_expression_is_parsed_one_to_one_or_refused(text):
    check_parse_or_refuse(text)


@pytest.mark.slow
@LONG
@given(VALUES, st.text(CHARS, max_size=24))
def test_filter_escaping_round_trips_long(values, text):
    check_round_trip(values)
    check_parse_or_refuse(text)


def test_bad_escapes_and_empty_values_are_refused():
    for text in ("a\\b", "a\\", "a,,b", ",a", "a,", ""):
        with pytest.raises(MfpError) as caught:
            _split_values(text, text)
        assert caught.value.status == 400 and caught.value.code == "FPWSE0007E"


@pytest.fixture
def app(db):
    return AppFactory()


USER_IDS = st.text(
    st.one_of(
        st.sampled_from([",", "\\", "x", "%", "&", "+", "="]),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    ),
    min_size=1,
    max_size=6,
)


@DB_SHORT
@given(values=st.lists(USER_IDS, min_size=1, max_size=3, unique=True), decoys=st.lists(USER_IDS, max_size=3))
def test_a_url_encoded_filter_selects_exactly_the_escaped_values(app, values, decoys):
    Player.objects.filter(app=app).delete()
    stored = list(dict.fromkeys([*values[:2], *decoys]))  # some wanted values exist, some do not
    for user_id in stored:
        Player.objects.create(app=app, device_type=1, external_user_id=user_id)
    query = urlencode({"filter": "userId==" + escape(values)})
    request = Request(RequestFactory().get("/imfpush/v1/apps/x/devices?" + query))
    condition = parse_filters(request, {"userId": text_field("external_user_id")})
    selected = set(
        Player.objects.filter(app=app).filter(condition).values_list("external_user_id", flat=True)
    )
    assert selected == set(stored) & set(values)
