"""The dashboard in a real headless browser: Debian's Chromium driven by Selenium through
chromedriver, against the live server, a real Celery worker and the gateway simulators.

One operator's journey, as issue 6 lists it: log in, create an app (and upload its credentials),
build a segment with the filter builder and see its count, compose and send to it, watch the
progress bar reach 100%, read the per-platform numbers on the detail page (cross-checked with what
the simulators recorded), cancel a scheduled notification, and export the sent CSV.

Screenshots of the overview, compose and detail pages go to ``HERALD_SCREENSHOTS_DIR`` when it is
set (``make screenshots`` points it at docs/screenshots/), else to the test's temporary directory.
Without Chromium and chromedriver (``bin/ensure-test-tools`` installs them) the module skips,
saying so loudly.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.models import App, Membership
from notifications.models import Notification
from tests.e2e.support import HeraldApi, every_gateway_env, settle, use_every_gateway
from tests.factories import OrganizationFactory
from tests.gatewaysim.simulator import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

IOS, ANDROID, CHROME = 0, 1, 5
BUNDLE = "com.example.browser"
PASSWORD = "correct horse battery staple"
WAIT_SECONDS = 60
STATS_GATEWAY = {"ios": "apns", "android": "fcm", "chrome_web_push": "webpush"}
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling Google's hosts, which this machine's network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1100",
)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chrome(tmp_path_factory) -> Iterator:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(
            "SKIPPED LOUDLY: the dashboard's browser tests need Debian's chromium and chromium-driver "
            "packages (bin/ensure-test-tools installs them when it may); they are not installed here"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # The console, read by csp_violations(): Chromium reports every script the CSP blocked there.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()  # chromedriver and every Chromium process with it


@pytest.fixture(scope="module")
def worker_extra_env(sim, live_server) -> dict[str, str]:
    return every_gateway_env(sim, public_url=live_server.url)


@pytest.fixture
def screenshots(tmp_path) -> Path:
    directory = Path(os.environ.get("HERALD_SCREENSHOTS_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def operator(transactional_db):
    """An organization's owner: staff, with the dashboard's model permissions, not a superuser."""
    organization = OrganizationFactory(name="Acme Games")
    user = get_user_model().objects.create_user("olivia", password=PASSWORD, is_staff=True)
    labels = ["apps", "players", "segments", "notifications"]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=labels))
    Membership.objects.create(organization=organization, user=user, role=Membership.Role.OWNER)
    return organization


@pytest.fixture(autouse=True)
def pipeline(sim, settings, transactional_db, worker) -> Iterator[None]:
    sim.reset(keep_tokens=True)
    use_every_gateway(settings, sim)
    yield
    settle()


# --- the page, as the operator sees it --------------------------------------------------------


class Dashboard:
    def __init__(self, driver, base_url: str, screenshots: Path):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.driver, self.base_url, self.shots = driver, base_url, screenshots
        self.by, self.select_class, self.wait_class = By, Select, WebDriverWait

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str):
        return self.driver.find_element(self.by.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        return self.driver.find_elements(self.by.CSS_SELECTOR, css)

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def choose(self, css: str, *, value: str | None = None, text: str | None = None) -> None:
        select = self.select_class(self.find(css))
        select.select_by_value(value) if value is not None else select.select_by_visible_text(text)

    def until(self, condition, message: str):
        """Wait for ``condition(driver)`` to be truthy; on timeout, fail with the page's text."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            TimeoutException,
        )

        # A page that is being replaced (after a click) raises these while it goes: try again.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        wait = self.wait_class(self.driver, WAIT_SECONDS, poll_frequency=0.2, ignored_exceptions=ignored)
        try:
            return wait.until(condition)
        except TimeoutException:
            body = self.find("body").text[:3000]
            pytest.fail(f"{message}: not seen in {WAIT_SECONDS}s at {self.driver.current_url}\n{body}")

    def text_of(self, css: str) -> str:
        return self.find(css).text

    def messages(self) -> list[str]:
        return [item.text for item in self.find_all("ul.messagelist li")]

    def csp_violations(self) -> list[str]:
        """What the console said about the Content-Security-Policy since the last call."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
        ]

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def _bar_fraction(page: Dashboard) -> float:
    """How much of its track the progress bar fills, as drawn (after its CSS transition)."""
    bar, track = page.find("#herald-progress-bar"), page.find(".herald-progress")
    return bar.size["width"] / track.size["width"]


def _register_audience(api: HeraldApi, sim: Simulator) -> dict[str, list[str]]:
    """Players of three platforms, as the SDKs register them: ``plan=pro`` ones (the segment) and
    ``plan=free`` ones (outside it). Returns the segment's identifiers by gateway."""
    pro: dict[str, list[str]] = {"apns": [], "fcm": [], "webpush": []}
    for plan, copies in (("pro", 2), ("free", 1)):
        for n in range(copies):
            ios_token = os.urandom(32).hex()
            android_token = f"fcm:browser-{plan}-{n}-{os.urandom(6).hex()}"
            api.register(IOS, ios_token, tags={"plan": plan})
            api.register(ANDROID, android_token, tags={"plan": plan})
            _, subscription = api.subscribe_web(sim, CHROME, tags={"plan": plan})
            if plan == "pro":
                pro["apns"].append(ios_token)
                pro["fcm"].append(android_token)
                pro["webpush"].append(subscription["endpoint"])
    return pro


def _fetch_when_ready(url: str, timeout: float = WAIT_SECONDS) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the live server
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code != 403 or time.monotonic() > deadline:  # 403: not ready yet
                raise
        time.sleep(0.3)


# --- the journey ------------------------------------------------------------------------------


def test_an_operator_sends_to_a_segment_and_follows_it_to_the_csv(
    chrome, live_server, operator, sim, screenshots, tmp_path
):
    page = Dashboard(chrome, live_server.url, screenshots)
    key_id, team_id, p8 = sim.apns_key(topics=[BUNDLE])

    # 1. log in
    page.open("/admin/login/")
    page.type("#id_username", "olivia")
    page.type("#id_password", PASSWORD)
    page.find("input[type=submit]").click()
    page.until(lambda d: "/admin/login/" not in d.current_url, "the dashboard after logging in")

    # 2. create an app, then upload its credentials (the FCM service account as a file, the .p8 pasted)
    page.open("/admin/apps/app/add/")
    page.choose("#id_organization", text="Acme Games")
    page.type("#id_name", "Space Racer")
    page.type("#id_apns_key_id", key_id)
    page.type("#id_apns_team_id", team_id)
    page.type("#id_apns_bundle_id", BUNDLE)
    page.find("input[name=_save]").click()
    page.until(lambda d: d.current_url.endswith("/admin/apps/app/"), "the app list after saving")
    app = App.objects.get(name="Space Racer", organization=operator)

    account = tmp_path / "service-account.json"
    account.write_text(json.dumps(sim.fcm_service_account("herald-browser")))
    page.open(f"/admin/apps/app/{app.pk}/credentials/")
    page.type("#id_apns_p8", p8)
    page.find("#id_fcm_v1_service_account_json").send_keys(str(account))
    page.find("input[type=submit]").click()
    page.until(lambda d: any(m.startswith("Saved:") for m in page.messages()), "the credentials saved")
    assert "apns_p8" in page.messages()[0] and "fcm_v1_service_account_json" in page.messages()[0]
    assert p8 not in chrome.page_source  # write-only: never rendered back

    # The SDKs register players without a key.
    api = HeraldApi(f"{live_server.url}/api/v1", str(app.pk), app_key="", user_key="")
    pro = _register_audience(api, sim)

    # 3. a segment built with the filter builder, with its live count
    page.open("/admin/segments/segment/add/")
    page.choose("#id_app", value=str(app.pk))
    page.type("#id_name", "Pro players")
    page.find("#herald-add-filter").click()
    row = page.find("#herald-builder .form-row")
    key, value = row.find_elements(page.by.CSS_SELECTOR, "input")
    key.send_keys("plan")
    value.send_keys("pro")
    page.until(lambda d: page.text_of("#herald-count") == "6", "the segment's live count of 6")
    page.find("input[name=_save]").click()
    page.until(lambda d: d.current_url.endswith("/admin/segments/segment/"), "the segment list")

    # 4. compose and send to the segment, after the audience estimate
    page.open("/admin/notifications/notification/compose/")
    page.choose("#id_app", value=str(app.pk))
    page.type("#id_name", "Season launch")
    page.type("#id_headings", '{"en": "Season 3 is here", "es": "Llega la temporada 3"}')
    page.type("#id_contents", '{"en": "New tracks, new cars.", "es": "Pistas nuevas, coches nuevos."}')
    page.find("input[name=audience][value=segments]").click()
    page.choose("#id_included_segments", value="Pro players")
    page.until(
        lambda d: page.text_of("#audience-estimate") == "6 subscribed players", "an audience estimate of 6"
    )
    page.screenshot("compose")
    page.find("input[name=_send]").click()
    page.until(lambda d: "/change/" in d.current_url, "the notification's detail page")
    notification = Notification.objects.get(app=app, name="Season launch")

    # 5. the progress bar reaches 100%
    page.until(lambda d: page.text_of("#herald-progress-text").startswith("completed"), "completed")
    page.until(lambda d: page.find("#herald-progress-bar").get_attribute("style") == "width: 100%;", "100%")
    progress = page.text_of("#herald-progress-text")
    assert "6 done (6 delivered, 0 failed, 0 errored), 0 remaining of 6" in progress
    assert page.text_of("#herald-conversions") == "0 clicked of 6 delivered."
    assert not page.find_all("#herald-cancel")  # a completed notification has nothing to cancel

    # 6. per-platform numbers on the detail page, equal to what each gateway received
    page.until(lambda d: len(page.find_all("#herald-platforms tbody tr")) == 3, "three platforms' numbers")
    shown = {}
    for row in page.find_all("#herald-platforms tbody tr"):
        cells = row.find_elements(page.by.TAG_NAME, "td")
        platform, delivered, failed, errored, _clicked = (cell.text for cell in cells)
        assert (failed, errored) == ("0", "0"), platform
        shown[platform] = int(delivered)
    records = [r for r in sim.deliveries() if r["status"] in (200, 201)]
    received = Counter(r["platform"] for r in records)
    assert {STATS_GATEWAY[platform]: count for platform, count in shown.items()} == received
    assert received == {"apns": 2, "fcm": 2, "webpush": 2}
    assert {(r["platform"], r["token"]) for r in records} == {
        (gateway, token) for gateway, tokens in pro.items() for token in tokens
    }
    page.until(lambda d: _bar_fraction(page) > 0.99, "the progress bar drawn full")
    page.screenshot("notification-detail")

    # 8. (on the sent one) export the sent CSV: the link in the message downloads once the worker wrote it
    page.find("input[value='Export sent CSV']").click()
    page.until(lambda d: any("CSV is being prepared" in m for m in page.messages()), "the export message")
    url = re.search(r"https?://\S+", next(m for m in page.messages() if "CSV" in m)).group(0)
    payload = _fetch_when_ready(url)
    text = gzip.decompress(payload).decode() if payload[:2] == b"\x1f\x8b" else payload.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 6
    assert {row["player_id"] for row in rows} == {
        str(pk) for pk in notification.deliveries.values_list("player_id", flat=True)
    }

    page.open(f"/admin/apps/app/{app.pk}/overview/")
    page.until(lambda d: "6 delivered" in page.text_of("#content"), "the overview counting the sends")
    page.screenshot("overview")

    # 7. a scheduled notification, canceled from its detail page before it is due
    page.open("/admin/notifications/notification/compose/")
    page.choose("#id_app", value=str(app.pk))
    page.type("#id_name", "Tomorrow's reminder")
    page.type("#id_contents", "Your daily reward is waiting")
    page.find("input[name=audience][value=segments]").click()
    page.choose("#id_included_segments", value="Pro players")
    page.type("#id_send_after", (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M"))
    page.find("input[name=_send]").click()
    page.until(lambda d: "/change/" in d.current_url, "the scheduled notification's page")
    scheduled = Notification.objects.get(app=app, name="Tomorrow's reminder")
    assert scheduled.send_after > timezone.now()
    page.find("input[value=Cancel]").click()
    page.until(lambda d: any(m.startswith("Notification canceled") for m in page.messages()), "canceled")
    scheduled.refresh_from_db()
    assert scheduled.canceled and scheduled.status == Notification.Status.CANCELED
    assert page.text_of("#herald-progress-text").startswith("canceled")
    assert not page.find_all("input[value=Cancel]")
    assert len(sim.deliveries()) == len(records)  # nothing more was sent

    # Every page above ran its scripts under the dashboard's CSP, which allows no inline script.
    assert "script-src 'self';" in _csp(live_server)
    assert page.csp_violations() == []



def _csp(live_server) -> str:
    with urllib.request.urlopen(f"{live_server.url}/admin/login/", timeout=10) as response:  # noqa: S310
        return response.headers["Content-Security-Policy"]
