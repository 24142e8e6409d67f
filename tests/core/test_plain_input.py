"""The fast path for the SDK's player bodies (core/api/plain_input.py) either returns exactly what
the DRF serializer would, or steps aside so that the serializer answers."""

from __future__ import annotations

import itertools

import pytest

from core.api.plain_input import plain_validated
from players.api.serializers import (
    PlayerInputSerializer,
    PurchaseInputSerializer,
    SessionInputSerializer,
    TagsInputSerializer,
)

# Values of every JSON kind, near each bound the player fields declare.
VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    7.5,
    -28800,
    50400,
    50401,
    -50401,
    2**31,
    2**62 + 1,
    90,
    90.5,
    -180.0,
    181,
    1e300,
    "",
    " ",
    "en",
    " en",
    "en ",
    "a\x00b",
    "tab\there",
    "é",
    "x" * 32,
    "x" * 33,
    "x" * 65,
    "x" * 201,
    "5",
    "true",
    "1.2.0",
    "US",
    "usa",
    "10.0.0.1",
    "00000000-0000-4000-8000-000000000000",
    [],
    ["a"],
    {},
    {"level": "1"},
]


def drf(serializer_class, body):
    serializer = serializer_class(data=body)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@pytest.mark.parametrize("serializer_class", [PlayerInputSerializer, SessionInputSerializer])
def test_every_field_and_value_gives_what_the_serializer_gives_or_steps_aside(serializer_class):
    taken = 0
    for name, value in itertools.product(serializer_class().fields, VALUES):
        fast = plain_validated(serializer_class, {name: value})
        if fast is not None:
            taken += 1
            assert fast == drf(serializer_class, {name: value}), (name, value)
            assert [type(v) for v in fast.values()] == [
                type(v) for v in drf(serializer_class, {name: value}).values()
            ], (name, value)
    assert taken > 300  # the fast path does take the usual values


def test_an_sdk_session_body_takes_the_fast_path():
    body = {"app_id": "x", "language": "en", "timezone": 3600, "game_version": "1.2.0", "device_os": "14"}
    assert plain_validated(SessionInputSerializer, body) == body


def test_unknown_keys_are_dropped_as_drf_drops_them():
    assert plain_validated(PlayerInputSerializer, {"language": "en", "surprise": [1]}) == {"language": "en"}


def test_fields_it_does_not_check_send_the_body_to_the_serializer():
    for body in ({"ip": "10.0.0.1"}, {"country": "US"}, {"amount_spent": 1}, {"parent_player_id": None}):
        assert plain_validated(PlayerInputSerializer, body) is None


def test_serializers_with_required_fields_or_defaults_always_use_drf():
    assert plain_validated(TagsInputSerializer, {"tags": {"a": "1"}}) is None
    assert plain_validated(PurchaseInputSerializer, {"purchases": [{"sku": "x"}]}) is None
