"""Canonical ids from gateways (ADM's registrationID) become the players' identifiers; the ADM
provider reports them from the simulator's answers. End to end: tests/e2e/test_huawei_adm_delivery.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifications.canonical_ids import DUPLICATE_REASON, player_identifiers_replace
from notifications.providers.adm import AdmProvider
from notifications.providers.base import CANONICAL_IDENTIFIER, Outcome
from players.models import DeviceType, Player
from tests.factories import PlayerFactory
from tests.gatewaysim.simulator import Simulator, running_simulator
from tests.notifications.test_hms_adm_providers import ADM_CLIENT, ADM_SECRET, item

pytestmark = pytest.mark.django_db

OLD, NEW = "amzn1.adm-registration.v3.old", "amzn1.adm-registration.v3.new"


def amazon_player(app, identifier: str) -> Player:
    return PlayerFactory(app=app, device_type=DeviceType.AMAZON, identifier=identifier)


def test_the_canonical_id_becomes_the_identifier(own):
    player = amazon_player(own.app, OLD)

    player_identifiers_replace(app_id=own.app.pk, replacements={player.pk: (OLD, NEW)})

    player.refresh_from_db()
    assert (player.identifier, player.notification_types, player.invalid_identifier) == (NEW, 1, False)


def test_a_canonical_id_another_player_holds_unsubscribes_the_stale_one(own):
    stale, live = amazon_player(own.app, OLD), amazon_player(own.app, NEW)

    player_identifiers_replace(app_id=own.app.pk, replacements={stale.pk: (OLD, NEW)})

    stale.refresh_from_db()
    live.refresh_from_db()
    assert (stale.identifier, stale.notification_types, stale.unsubscribed_reason) == (
        OLD,
        -2,
        DUPLICATE_REASON,
    )
    assert stale.invalid_identifier is True
    assert (live.identifier, live.notification_types) == (NEW, 1)


def test_a_player_that_registered_another_id_since_keeps_it(own):
    player = amazon_player(own.app, "amzn1.adm-registration.v3.newer-from-the-sdk")

    player_identifiers_replace(app_id=own.app.pk, replacements={player.pk: (OLD, NEW)})

    player.refresh_from_db()
    assert player.identifier == "amzn1.adm-registration.v3.newer-from-the-sdk"


def test_another_apps_player_is_never_touched(own, outsider):
    theirs = amazon_player(outsider.app, OLD)
    amazon_player(outsider.app, NEW)  # and the same id elsewhere is no clash for own's players
    mine = amazon_player(own.app, "amzn1.adm-registration.v3.mine")

    player_identifiers_replace(
        app_id=own.app.pk,
        replacements={theirs.pk: (OLD, "amzn1.adm-registration.v3.x"), mine.pk: (mine.identifier, NEW)},
    )

    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert (theirs.identifier, theirs.notification_types) == (OLD, 1)
    assert (mine.identifier, mine.notification_types) == (NEW, 1)


# --- the ADM provider against the simulator -------------------------------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[Simulator]:
    with running_simulator(tmp_path_factory.mktemp("canonical-ids")) as simulator:
        simulator.register_adm_client(ADM_CLIENT, ADM_SECRET)
        yield simulator


def test_adm_reports_the_canonical_id_it_answers(sim, own, settings):
    sim.reset()
    settings.HERALD_GATEWAY_CA_FILE = str(sim.ca_path)
    settings.HERALD_ADM_TOKEN_URL = sim.adm_token_url
    settings.HERALD_ADM_BASE_URL = sim.adm_url
    own.app.adm_client_id, own.app.adm_client_secret = ADM_CLIENT, ADM_SECRET
    rotated, kept = sim.adm_registration_ids(2)
    canonical = sim.rotate_adm(rotated)[rotated]
    items = [item(DeviceType.AMAZON, rotated), item(DeviceType.AMAZON, kept)]

    results = {r.player_id: r for r in AdmProvider(own.app).send(items)}

    moved, stayed = (results[recipient.player_id] for recipient, _ in items)
    assert (moved.outcome, moved.extra) == (Outcome.SENT, {CANONICAL_IDENTIFIER: (rotated, canonical)})
    assert (stayed.outcome, stayed.extra) == (Outcome.SENT, {})
