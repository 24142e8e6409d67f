"""manage.py seed_players: players/seeding.py (the benchmarks' COPY seeding) from the command line,
with a progress bar; and on the embedded SQLite default, where the CSV commands refuse clearly."""

from __future__ import annotations

import json
import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from players.models import Player
from tests.embedded import embedded_env
from tests.embedded import manage as run_manage
from tests.factories import PlayerFactory
from tests.gatewaysim.simulator import running_simulator

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_players", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_seeds_players_spread_over_the_mix_with_tags(own, outsider):
    out, err = run(
        "--app", str(own.app.id), "--count", "10", "--mix", "android,ios,email,sms",
        "--tags", "plan=pro,cohort=c1", "--progress",
    )  # fmt: skip

    players = list(Player.objects.filter(app=own.app).order_by("identifier"))
    by_type = {t: sum(p.device_type == t for p in players) for t in (1, 0, 11, 14)}
    assert by_type == {1: 3, 0: 3, 11: 2, 14: 2}  # player i on platform i mod 4
    assert all(p.tags["plan"] == "pro" and p.tags["cohort"] == "c1" and "level" in p.tags for p in players)
    assert {p.identifier for p in players if p.device_type == 14} == {"+12000000000", "+12000000001"}
    assert Player.objects.filter(app=own.app).subscribed().count() == 10
    assert not Player.objects.filter(app=outsider.app).exists()
    assert "Seeded 10 players into app" in out and "android 3, ios 3, email 2, sms 2" in out
    assert "Seeding: 100%" in err and "10/10" in err


def test_a_second_run_adds_players_after_the_first(own):
    run("--app", str(own.app.id), "--count", "3", "--quiet")
    _, err = run("--app", str(own.app.id), "--count", "2")
    assert Player.objects.filter(app=own.app).count() == 5 and err == ""
    assert Player.objects.filter(app=own.app, identifier="seed-fcm-000000004").exists()


def test_identifiers_already_there_write_nothing(own):
    PlayerFactory(app=own.app, identifier="seed-fcm-000000001")
    with pytest.raises(CommandError, match="already players of the app; nothing was written"):
        run("--app", str(own.app.id), "--count", "5", "--start", "0")
    assert Player.objects.filter(app=own.app).count() == 1


def test_web_players_get_endpoints_from_the_simulator(own, settings, tmp_path):
    with running_simulator(tmp_path / "sim") as sim:
        settings.HERALD_GATEWAYSIM_CONTROL_URL = sim.control_url
        run("--app", str(own.app.id), "--count", "4", "--mix", "web,android")
    web = list(Player.objects.filter(app=own.app, device_type=5))
    assert len(web) == 2 and all(
        p.identifier.startswith("https://") and p.web_p256 and p.web_auth for p in web
    )
    own.app.refresh_from_db()
    assert own.app.vapid_public_key  # the simulator's subscriptions are for the app's key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "--count: between 1"),
        (["--count", "5", "--mix", "android,pager"], "unknown: pager"),
        (["--count", "5", "--tags", "plan"], "'plan' is not key=value"),
        (["--count", "5", "--tags", '{"plan": '], "not a JSON object"),
        (["--count", "5", "--start", "-1"], "--start: 0 or more"),
    ],
)
def test_bad_options_are_clear_errors(own, args, message):
    with pytest.raises(CommandError, match=message):
        run("--app", str(own.app.id), *args)
    assert not Player.objects.exists()


def test_web_without_the_simulator_is_refused(own, settings):
    settings.HERALD_GATEWAYSIM_CONTROL_URL = ""
    with pytest.raises(CommandError, match="HERALD_GATEWAYSIM_CONTROL_URL is not set"):
        run("--app", str(own.app.id), "--count", "5", "--mix", "android,web")
    assert not Player.objects.exists()


@pytest.mark.parametrize("app_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_the_app_must_exist(db, app_id):
    with pytest.raises(CommandError, match="--app: "):
        run("--app", app_id, "--count", "5")
    assert not Player.objects.exists()


def test_on_the_embedded_sqlite_default_seeding_works_and_csv_refuses(tmp_path):
    """`make run`'s database: seed_players writes with batched INSERTs; import and export say
    they need PostgreSQL, without a traceback."""
    env = embedded_env(tmp_path)

    def manage(*args: str) -> subprocess.CompletedProcess:
        return run_manage(env, *args)

    assert manage("migrate", "-v0").returncode == 0
    app_id = json.loads(manage("bootstrap_demo", "--json").stdout)["app_id"]
    seeded = manage(
        "seed_players", "--app", app_id, "--count", "1200", "--mix", "android,ios,email", "--progress"
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "Seeded 1200 players" in seeded.stdout and "1200/1200" in seeded.stderr
    again = manage("seed_players", "--app", app_id, "--count", "3", "--start", "0")
    assert again.returncode == 1 and "nothing was written" in again.stderr

    (tmp_path / "players.csv").write_text("identifier,device_type\ntok,1\n")
    for command in (["import_players", str(tmp_path / "players.csv")], ["export_players"]):
        refused = manage(*command, "--app", app_id)
        assert refused.returncode == 1
        assert "needs PostgreSQL" in refused.stderr and "Traceback" not in refused.stderr
