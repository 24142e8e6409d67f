from __future__ import annotations

import secrets

import factory

from apps.models import App, Organization
from players.models import DeviceType, Player


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"org-{n}")


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"app-{n}")


def fcm_token() -> str:
    return "fcm:" + secrets.token_urlsafe(60)


def apns_token() -> str:
    return secrets.token_hex(32)


class PlayerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Player

    app = factory.SubFactory(AppFactory)
    device_type = DeviceType.ANDROID
    identifier = factory.LazyFunction(fcm_token)
    language = "en"
    timezone = 0


# --- segments (added with the segments app) ---


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "players.Purchase"

    player = factory.SubFactory(PlayerFactory)
    sku = "com.example.coins"
    amount = 0.99


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "segments.Segment"

    app = factory.SubFactory(AppFactory)
    name = factory.Sequence(lambda n: f"segment-{n}")
    filters = factory.LazyFunction(lambda: [{"field": "session_count", "relation": ">", "value": "1"}])
