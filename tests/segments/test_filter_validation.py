"""validate_filters: shapes, fields, relations and operands, with the exact 400 messages (§2.3)."""

from __future__ import annotations

import pytest

from segments.filters import FilterError, compile_filters, validate_filters

TAG = {"field": "tag", "key": "level", "relation": "=", "value": "10"}
OR = {"operator": "OR"}


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"field": "tag"}, "Invalid filter: filters must be an array of filter objects"),
        ("tag = 1", "Invalid filter: filters must be an array of filter objects"),
        ([TAG] * 201, "Filters may contain at most 200 entries"),
        ([TAG, OR] * 100 + [TAG], "Filters may contain at most 200 entries"),
        ([OR, TAG], "Filters must not start or end with an operator"),
        ([TAG, {"operator": "AND"}], "Filters must not start or end with an operator"),
        ([OR], "Filters must not start or end with an operator"),
        ([TAG, OR, {"operator": "AND"}, TAG], "Invalid filter: filters[2]: two operators in a row"),
        ([TAG, "x"], "Invalid filter: filters[1]: each entry must be an object"),
        ([TAG, {"operator": "XOR"}, TAG], 'Invalid filter: filters[1]: operator must be "AND" or "OR"'),
        (
            [TAG, {"operator": "OR", "field": "tag"}, TAG],
            "Invalid filter: filters[1]: an entry is either a filter (field) or an operator, not both",
        ),
        ([{"relation": "=", "value": "1"}], "Invalid filter: filters[0]: field is required"),
        ([{"field": 3}], "Invalid filter: filters[0]: field must be a string"),
        ([{"field": "level", "relation": "="}], 'Invalid filter: filters[0]: unknown field "level"'),
        (
            [{"field": "message_event", "relation": "="}],
            "Invalid filter: filters[0]: user-based filters (message_event, custom_event) are not supported "
            "via the API",
        ),
        ([{"field": "tag", "key": "a", "value": "1"}], "Invalid filter: filters[0]: relation is required"),
        (
            [{"field": "tag", "key": "a", "relation": "~", "value": "1"}],
            'Invalid filter: filters[0]: relation "~" is not valid for field "tag" (use >, <, =, !=, exists, '
            "not_exists, time_elapsed_gt, time_elapsed_lt, in_array, not_in_array)",
        ),
        (
            [{"field": "country", "relation": "!=", "value": "US"}],
            'Invalid filter: filters[0]: relation "!=" is not valid for field "country" (use =)',
        ),
        (
            [{"field": "last_session", "relation": "=", "hours_ago": "1"}],
            'Invalid filter: filters[0]: relation "=" is not valid for field "last_session" (use >, <)',
        ),
        (
            [{"field": "tag", "relation": "=", "value": "1"}],
            'Invalid filter: filters[0]: key is required for field "tag"',
        ),
        (
            [{"field": "bought_sku", "key": "", "relation": ">", "value": "1"}],
            'Invalid filter: filters[0]: key is required for field "bought_sku"',
        ),
        ([{"field": "tag", "key": "a", "relation": "="}], "Invalid filter: filters[0]: value is required"),
        (
            [{"field": "tag", "key": "a", "relation": "=", "value": ["1"]}],
            "Invalid filter: filters[0]: value must be a string",
        ),
        (
            [{"field": "tag", "key": "a", "relation": "=", "value": True}],
            "Invalid filter: filters[0]: value must be a string",
        ),
        ([{"field": "last_session", "relation": ">"}], "Invalid filter: filters[0]: hours_ago is required"),
        (
            [{"field": "last_session", "relation": ">", "hours_ago": "a day"}],
            "Invalid filter: filters[0]: hours_ago must be a number",
        ),
        (
            [{"field": "last_session", "relation": ">", "hours_ago": "-1"}],
            "Invalid filter: filters[0]: hours_ago must be a non-negative number",
        ),
        (
            [{"field": "session_count", "relation": ">", "value": "2.5"}],
            "Invalid filter: filters[0]: value must be an integer",
        ),
        (
            [{"field": "session_time", "relation": ">", "value": "long"}],
            "Invalid filter: filters[0]: value must be an integer",
        ),
        (
            [{"field": "amount_spent", "relation": ">", "value": "$5"}],
            "Invalid filter: filters[0]: value must be a number",
        ),
        (
            [{"field": "amount_spent", "relation": ">", "value": "1e3"}],
            "Invalid filter: filters[0]: value must be a number",
        ),
        (
            [{"field": "tag", "key": "t", "relation": "time_elapsed_gt", "value": "-5"}],
            "Invalid filter: filters[0]: value must be a non-negative number of seconds",
        ),
        (
            [
                {
                    "field": "tag",
                    "key": "t",
                    "relation": "in_array",
                    "value": ",".join(str(i) for i in range(21)),
                }
            ],
            "Invalid filter: filters[0]: in_array takes at most 20 comma-separated values",
        ),
        (
            [{"field": "language", "relation": "=", "value": " "}],
            "Invalid filter: filters[0]: value is required",
        ),
        (
            [{"field": "rooted", "relation": "=", "value": "yes"}],
            'Invalid filter: filters[0]: value must be "true" or "false"',
        ),
        ([{"field": "location", "lat": 1, "long": 1}], "Invalid filter: filters[0]: radius is required"),
        (
            [{"field": "location", "radius": 0, "lat": 1, "long": 1}],
            "Invalid filter: filters[0]: radius must be a positive number",
        ),
        (
            [{"field": "location", "radius": 5, "lat": 91, "long": 1}],
            "Invalid filter: filters[0]: lat must be a number from -90 to 90",
        ),
        (
            [{"field": "location", "radius": 5, "lat": 1, "long": "-180.5"}],
            "Invalid filter: filters[0]: long must be a number from -180 to 180",
        ),
        (
            [{"field": "location", "radius": float("nan"), "lat": 1, "long": 1}],
            "Invalid filter: filters[0]: radius must be a finite number",
        ),
        (
            [TAG, OR, {"field": "email", "relation": ">", "value": "a@b.c"}],
            'Invalid filter: filters[2]: relation ">" is not valid for field "email" (use =)',
        ),
    ],
)
def test_bad_filters_are_refused_with_the_catalog_message(filters, message):
    with pytest.raises(FilterError) as caught:
        validate_filters(filters)
    assert caught.value.message == message
    assert str(caught.value) == message
    with pytest.raises(FilterError):
        compile_filters(filters)  # compile validates too


def test_two_hundred_entries_are_allowed():
    filters = [TAG, OR] * 99 + [TAG, TAG]
    assert len(validate_filters(filters)) == 200


def test_an_empty_list_is_valid_here():
    assert validate_filters([]) == []


def test_operands_are_normalised_to_the_wire_types():
    filters = [
        {"field": "tag", "key": "level", "relation": "=", "value": 10, "hours_ago": None, "extra": 1},
        {"operator": "and"},
        {"field": "tag", "key": "level", "relation": "exists", "value": "ignored"},
        {"operator": "or"},
        {"field": "session_count", "relation": ">", "value": " 2.0 "},
        {"field": "amount_spent", "relation": ">", "value": 0.5},
        {"field": "last_session", "relation": "<", "hours_ago": 1.5},
        {"field": "first_session", "relation": ">", "value": "24"},  # hours_ago sent as value
        {"field": "location", "relation": "=", "radius": "1000", "lat": "52.5", "long": 13},
        {"field": "tag", "key": "plan", "relation": "in_array", "value": " gold , silver"},
        {"field": "rooted", "relation": "=", "value": True},
        {"field": "country", "relation": "=", "value": " us "},
    ]
    assert validate_filters(filters) == [
        {"field": "tag", "key": "level", "relation": "=", "value": "10"},
        {"operator": "AND"},
        {"field": "tag", "key": "level", "relation": "exists"},
        {"operator": "OR"},
        {"field": "session_count", "relation": ">", "value": "2"},
        {"field": "amount_spent", "relation": ">", "value": "0.5"},
        {"field": "last_session", "relation": "<", "hours_ago": "1.5"},
        {"field": "first_session", "relation": ">", "hours_ago": "24"},
        {"field": "location", "radius": 1000.0, "lat": 52.5, "long": 13.0},
        {"field": "tag", "key": "plan", "relation": "in_array", "value": "gold,silver"},
        {"field": "rooted", "relation": "=", "value": "true"},
        {"field": "country", "relation": "=", "value": "us"},
    ]


def test_normalising_twice_changes_nothing():
    filters = [
        {"field": "tag", "key": "k", "relation": "<", "value": 3.25},
        {"operator": "or"},
        {"field": "location", "radius": "10", "lat": "1", "long": "2"},
    ]
    once = validate_filters(filters)
    assert validate_filters(once) == once
