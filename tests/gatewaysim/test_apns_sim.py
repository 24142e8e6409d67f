"""The APNs simulator over real sockets: ``POST /3/device/<token>`` over HTTP/2 and TLS.

Requests go through pycurl (Herald's transport) and, where the HTTP/2 frames themselves are the
point (SETTINGS, REFUSED_STREAM, GOAWAY's last_stream_id), through a bare ``h2`` client.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import jwt
import pycurl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.gatewaysim.http2 import Http2Client, Response, post_many
from tests.gatewaysim.simulator import Simulator, running_simulator

BUNDLE = "com.example.herald"
UUID_PATTERN = "%08X-%04X-%04X-%04X-%012X"


def device() -> str:
    return secrets.token_hex(32)


def provider_jwt(key: tuple[str, str, str], *, iat: int | None = None, **header) -> str:
    key_id, team_id, pem = key
    claims = {"iss": team_id, "iat": int(time.time()) if iat is None else iat}
    return jwt.encode(claims, pem, algorithm="ES256", headers={"kid": key_id, **header})


@pytest.fixture
def key(sim: Simulator) -> tuple[str, str, str]:
    return sim.apns_key(topics=[BUNDLE])


@pytest.fixture
def token(key) -> str:
    return provider_jwt(key)


def headers_for(token: str | None, **extra: str) -> dict[str, str]:
    headers = {"apns-topic": BUNDLE, "apns-push-type": "alert", "apns-priority": "10"}
    if token is not None:
        headers["authorization"] = f"bearer {token}"
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return {name: value for name, value in headers.items() if value != ""}


def payload(notification_id: str = "n-1", **aps) -> dict:
    return {"aps": {"alert": {"title": "Herald", "body": "Hello"}, **aps}, "custom": {"i": notification_id}}


def push(
    sim: Simulator,
    client: Http2Client,
    token: str | None,
    device_token: str | None = None,
    body: dict | bytes | None = None,
    **headers: str,
) -> Response:
    url = f"{sim.apns_url}/3/device/{device() if device_token is None else device_token}"
    return client.post(url, payload() if body is None else body, headers_for(token, **headers))


def reason(response: Response) -> str:
    return response.json()["reason"]


# --- accepted sends -----------------------------------------------------------------------------


def test_it_accepts_a_valid_push_over_http2_and_records_it(sim: Simulator, client, token):
    target = device()
    response = push(sim, client, token, target, payload("n-1", badge=3), apns_collapse_id="c-1")

    assert response.http_version == "2"
    assert response.status == 200
    assert response.body == b""
    assert uuid.UUID(response.headers["apns-id"])
    [delivery] = sim.deliveries(token=target)
    assert delivery["platform"] == "apns"
    assert delivery["status"] == 200
    assert delivery["payload"] == payload("n-1", badge=3)
    headers = delivery["headers"]
    assert headers["authorization"] == "bearer [redacted]"
    assert token not in json.dumps(delivery)
    assert headers["apns-topic"] == BUNDLE
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-collapse-id"] == "c-1"
    assert headers["x-sim-auth"] == "token"
    assert len(headers["x-sim-jwt"]) == 16
    assert headers["x-sim-apns-id"] == response.headers["apns-id"]
    assert sim.stats()["apns"] == {"received": 1, "accepted": 1, "rejected": 0, "duplicates": 0}


def test_it_echoes_the_callers_apns_id(sim: Simulator, client, token):
    apns_id = str(uuid.uuid4()).upper()

    assert push(sim, client, token, apns_id=apns_id).headers["apns-id"] == apns_id


def test_one_jwt_is_recognised_across_requests(sim: Simulator, client, key, token):
    for _ in range(3):
        assert push(sim, client, token).status == 200

    assert len({d["headers"]["x-sim-jwt"] for d in sim.deliveries(platform="apns")}) == 1
    keys = {k["key_id"]: k for k in sim.control("GET", "/_sim/apns/keys").body["keys"]}
    assert keys[key[0]]["tokens_seen"] == 1


def test_duplicates_are_counted_by_token_and_custom_i(sim: Simulator, client, token):
    target = device()
    push(sim, client, token, target, payload("n-1"))
    push(sim, client, token, target, payload("n-1"))
    push(sim, client, token, target, payload("n-2"))
    push(sim, client, token, device(), payload("n-1"))

    assert sim.stats()["apns"] == {"received": 4, "accepted": 4, "rejected": 0, "duplicates": 1}
    assert [d["duplicate"] for d in sim.deliveries(token=target)] == [False, True, False]


# --- authentication ------------------------------------------------------------------------------


def test_a_request_without_a_provider_token_is_403(sim: Simulator, client):
    response = push(sim, client, None)

    assert (response.status, reason(response)) == (403, "MissingProviderToken")


def test_bad_provider_tokens_are_403_invalid(sim: Simulator, client, key):
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = (key[0], key[1], other_key.decode())
    cases = {
        "garbage": "not-a-jwt",
        "unknown-kid": provider_jwt(("NOPE", key[1], key[2])),
        "bad-signature": provider_jwt(forged),
        "wrong-team": provider_jwt((key[0], "OTHERTEAM", key[2])),
        "hs256": jwt.encode({"iss": key[1], "iat": int(time.time())}, "s" * 32, headers={"kid": key[0]}),
        "from-the-future": provider_jwt(key, iat=int(time.time()) + 3600),
    }
    for name, bad in cases.items():
        response = push(sim, client, bad)
        assert (response.status, reason(response)) == (403, "InvalidProviderToken"), name


def test_a_token_over_an_hour_old_is_403_expired(sim: Simulator, client, key):
    response = push(sim, client, provider_jwt(key, iat=int(time.time()) - 3601))

    assert (response.status, reason(response)) == (403, "ExpiredProviderToken")
    assert push(sim, client, provider_jwt(key, iat=int(time.time()) - 3000)).status == 200


def test_an_injected_expired_provider_token_stays_expired_until_renewed(sim: Simulator, client, key):
    old = provider_jwt(key)
    sim.faults("apns", fail_first={"ExpiredProviderToken": 1})

    first = push(sim, client, old)
    again = push(sim, client, old)
    renewed = push(sim, client, provider_jwt(key))

    assert (first.status, reason(first)) == (403, "ExpiredProviderToken")
    assert (again.status, reason(again)) == (403, "ExpiredProviderToken")
    assert renewed.status == 200


def test_strict_keys_refuse_a_token_renewed_within_20_minutes(sim: Simulator, client):
    key = sim.apns_key(topics=[BUNDLE], strict_token_updates=True)
    first, second = provider_jwt(key), provider_jwt(key)

    assert push(sim, client, first).status == 200
    refused = push(sim, client, second)
    assert (refused.status, reason(refused)) == (429, "TooManyProviderTokenUpdates")
    assert push(sim, client, first).status == 200
    # Renewing a token APNs refused as expired is what a provider must do, and is accepted.
    sim.faults("apns", fail_first={"ExpiredProviderToken": 1})
    assert push(sim, client, first).status == 403
    assert push(sim, client, provider_jwt(key)).status == 200
    [registered] = [k for k in sim.control("GET", "/_sim/apns/keys").body["keys"] if k["key_id"] == key[0]]
    assert registered["refused_updates"] == 1


def test_topics_outside_the_keys_registration_are_refused(sim: Simulator, client, token):
    response = push(sim, client, token, apns_topic="com.example.other")

    assert (response.status, reason(response)) == (400, "TopicDisallowed")


def test_key_registration_is_validated(sim: Simulator):
    rsa_like = {"key_id": "K", "team_id": "T", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nxx\n"}

    assert sim.control("POST", "/_sim/apns/keys", {"key_id": "K"}).status == 400
    assert sim.control("POST", "/_sim/apns/keys", rsa_like).status == 400
    assert sim.control("POST", "/_sim/apns/keys", {**rsa_like, "topics": "x"}).status == 400


def client_certificate(sim: Simulator, bundle_id: str) -> tuple[bytes, bytes]:
    """A push certificate as Apple issues them (UID = bundle id), signed by the simulator's CA."""
    ca = x509.load_pem_x509_certificate((sim.state_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((sim.state_dir / "ca-key.pem").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, bundle_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Apple Push Services: {bundle_id}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_certificate_auth_pushes_to_the_certificates_topic(sim: Simulator):
    cert_pem, key_pem = client_certificate(sim, "com.example.cert")
    with Http2Client(sim.ca_path) as with_cert:
        with_cert.curl.setopt(pycurl.SSLCERT_BLOB, cert_pem)
        with_cert.curl.setopt(pycurl.SSLKEY_BLOB, key_pem)
        no_topic = push(sim, with_cert, None, apns_topic="")
        own_topic = push(sim, with_cert, None, apns_topic="com.example.cert")
        other_topic = push(sim, with_cert, None, apns_topic=BUNDLE)

    assert no_topic.status == 200
    assert own_topic.status == 200
    assert (other_topic.status, reason(other_topic)) == (400, "TopicDisallowed")
    assert {d["headers"]["x-sim-auth"] for d in sim.deliveries(platform="apns")} == {"certificate"}


WEBSITE_PUSH_ID = "web.com.example.herald"


def website_push(notification_id: str = "n-1", **aps) -> dict:
    alert = {"title": "Herald", "body": "Hello"}
    return {"aps": {"alert": alert, "url-args": ["orders/1"], **aps}, "custom": {"i": notification_id}}


def test_a_safari_certificate_pushes_to_its_website_push_id(sim: Simulator):
    cert_pem, key_pem = client_certificate(sim, WEBSITE_PUSH_ID)
    with Http2Client(sim.ca_path) as with_cert:
        with_cert.curl.setopt(pycurl.SSLCERT_BLOB, cert_pem)
        with_cert.curl.setopt(pycurl.SSLKEY_BLOB, key_pem)
        sent = push(sim, with_cert, None, body=website_push(), apns_topic=WEBSITE_PUSH_ID)
        bundle = push(sim, with_cert, None, body=website_push(), apns_topic=BUNDLE)

    assert sent.status == 200
    assert (bundle.status, reason(bundle)) == (400, "TopicDisallowed")
    assert sim.deliveries(platform="apns")[0]["payload"]["aps"]["url-args"] == ["orders/1"]


def test_a_key_registered_for_a_website_push_id_may_push_to_it(sim: Simulator, client):
    key = sim.apns_key(topics=[BUNDLE, WEBSITE_PUSH_ID])
    token = provider_jwt(key)

    assert push(sim, client, token, body=website_push(), apns_topic=WEBSITE_PUSH_ID).status == 200
    other = push(sim, client, token, body=website_push(), apns_topic="web.com.example.other")
    assert (other.status, reason(other)) == (400, "TopicDisallowed")


@pytest.mark.parametrize(
    "body",
    [
        payload(),  # no url-args
        website_push(alert="Hello"),  # a string alert: Safari needs a title and a body
        website_push(alert={"title": "Herald"}),
        website_push(**{"url-args": "orders/1"}),
        website_push(**{"url-args": [1]}),
    ],
)
def test_a_website_push_safari_could_not_show_is_a_bad_payload(sim: Simulator, client, body):
    token = provider_jwt(sim.apns_key(topics=[WEBSITE_PUSH_ID]))

    response = push(sim, client, token, body=body, apns_topic=WEBSITE_PUSH_ID)

    assert (response.status, reason(response)) == (400, "BadPayload")


def test_app_topics_keep_taking_any_aps(sim: Simulator, client, token):
    assert push(sim, client, token, body={"aps": {"content-available": 1}}).status == 200


# --- request checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({"apns_topic": ""}, "MissingTopic"),
        ({"apns_push_type": "shout"}, "InvalidPushType"),
        ({"apns_push_type": "voip"}, "InvalidPushType"),  # a VoIP push needs the .voip topic
        ({"apns_priority": "7"}, "BadPriority"),
        ({"apns_push_type": "background", "apns_priority": "10"}, "BadPriority"),
        ({"apns_expiration": "tomorrow"}, "BadExpirationDate"),
        ({"apns_collapse_id": "c" * 65}, "BadCollapseId"),
        ({"apns_id": "not-a-uuid"}, "BadMessageId"),
    ],
)
def test_bad_headers_are_400_with_apples_reason(sim: Simulator, client, token, headers, expected):
    response = push(sim, client, token, **headers)

    assert (response.status, reason(response)) == (400, expected)
    [delivery] = sim.deliveries(platform="apns")
    assert delivery["status"] == 400
    assert delivery["headers"]["x-sim-reason"] == expected


def test_good_headers_of_every_kind_are_accepted(sim: Simulator, client, token):
    accepted = [
        push(sim, client, token, apns_collapse_id="c" * 64, apns_expiration="0"),
        push(sim, client, token, apns_push_type="background", apns_priority="5"),
        push(sim, client, token, apns_push_type="voip", apns_topic=f"{BUNDLE}.voip"),
        push(sim, client, token, apns_push_type="", apns_priority=""),  # both optional
    ]

    assert [response.status for response in accepted] == [200] * 4


@pytest.mark.parametrize(
    "device_token,status,expected",
    [
        ("zz" * 32, 400, "BadDeviceToken"),
        ("abc", 400, "BadDeviceToken"),
        ("", 400, "MissingDeviceToken"),
        ("ab/cd", 404, "BadPath"),
    ],
)
def test_device_tokens_must_be_hex(sim: Simulator, client, token, device_token, status, expected):
    response = push(sim, client, token, device_token)

    assert (response.status, reason(response)) == (status, expected)


def test_the_payload_limit_is_4096_bytes_and_5120_for_voip(sim: Simulator, client, token):
    def sized(size: int) -> bytes:
        body = json.dumps({"aps": {"alert": ""}, "custom": {"i": "n"}}, separators=(",", ":"))
        pad = size - len(body)
        return json.dumps({"aps": {"alert": "x" * pad}, "custom": {"i": "n"}}, separators=(",", ":")).encode()

    voip = {"apns_push_type": "voip", "apns_topic": f"{BUNDLE}.voip"}
    assert len(sized(4096)) == 4096
    assert push(sim, client, token, body=sized(4096)).status == 200
    too_large = push(sim, client, token, body=sized(4097))
    assert (too_large.status, reason(too_large)) == (413, "PayloadTooLarge")
    assert push(sim, client, token, body=sized(5120), **voip).status == 200
    assert push(sim, client, token, body=sized(5121), **voip).status == 413


def test_payloads_must_be_json_objects_with_aps(sim: Simulator, client, token):
    assert reason(push(sim, client, token, body=b"")) == "PayloadEmpty"
    assert reason(push(sim, client, token, body=b"{not json")) == "BadPayload"
    assert reason(push(sim, client, token, body={"custom": {"i": "n"}})) == "BadPayload"
    assert reason(push(sim, client, token, body={"aps": "alert"})) == "BadPayload"


# --- faults --------------------------------------------------------------------------------------


def test_fault_errors_use_apples_statuses_and_bodies(sim: Simulator, client, token):
    gone, bad = device(), device()
    sim.faults(
        "apns",
        fail_first={"TooManyRequests": 1, "InternalServerError": 1, "Shutdown": 1},
        token_errors={gone: "Unregistered", bad: "DeviceTokenNotForTopic"},
        retry_after=3,
    )

    busy, broken, shutdown = (push(sim, client, token) for _ in range(3))
    unregistered = push(sim, client, token, gone)
    not_for_topic = push(sim, client, token, bad)
    fine = push(sim, client, token)

    assert (busy.status, reason(busy), busy.headers["retry-after"]) == (429, "TooManyRequests", "3")
    assert (broken.status, reason(broken)) == (500, "InternalServerError")
    assert "retry-after" not in broken.headers
    assert (shutdown.status, reason(shutdown), shutdown.headers["retry-after"]) == (503, "Shutdown", "3")
    assert unregistered.status == 410
    assert unregistered.json()["reason"] == "Unregistered"
    assert abs(unregistered.json()["timestamp"] / 1000 - time.time()) < 60
    assert (not_for_topic.status, reason(not_for_topic)) == (400, "DeviceTokenNotForTopic")
    assert fine.status == 200
    assert sim.stats()["apns"] == {"received": 6, "accepted": 1, "rejected": 5, "duplicates": 0}


def test_fault_plans_take_only_apns_reasons_and_sane_connection_faults(sim: Simulator):
    for config in (
        {"error_rates": {"UNAVAILABLE": 0.5}},
        {"token_errors": {"ab": "GONE"}},
        {"goaway_after": 0},
        {"max_concurrent_streams": "1"},
        {"max_concurrent_streams": 2**31},
    ):
        assert sim.control("POST", "/_sim/faults", {"platform": "apns", **config}).status == 400, config

    plan = sim.faults("apns", goaway_after=5, max_concurrent_streams=3)["faults"]
    assert (plan["goaway_after"], plan["max_concurrent_streams"]) == (5, 3)


def test_latency_delays_answers(sim: Simulator, client, token):
    sim.faults("apns", latency_ms=300)
    started = time.monotonic()

    assert push(sim, client, token).status == 200
    assert time.monotonic() - started >= 0.3


# --- HTTP/2: stream limits and GOAWAY ------------------------------------------------------------


def bodies(count: int, prefix: str = "n") -> list[bytes]:
    return [json.dumps(payload(f"{prefix}-{n}")).encode() for n in range(count)]


def test_goaway_after_n_streams_loses_nothing_for_libcurl(sim: Simulator, token):
    sim.faults("apns", goaway_after=30)
    target = device()

    # libcurl resends a stream refused by GOAWAY at most 5 times, then fails it (Herald then
    # retries it as TRANSIENT); few streams in flight keep this test clear of that limit.
    responses, connections = post_many(
        f"{sim.apns_url}/3/device/{target}", bodies(200), headers_for(token), sim.ca_path, in_flight=8
    )

    assert [r.status for r in responses] == [200] * 200
    assert connections >= 200 // 30
    stats = sim.control("GET", "/_sim/apns/connections").body
    assert stats["goaway"] >= 200 // 30
    # Streams after a GOAWAY were never processed: libcurl sent them again, each exactly once.
    assert sim.stats()["apns"] == {"received": 200, "accepted": 200, "rejected": 0, "duplicates": 0}
    assert sorted(d["payload"]["custom"]["i"] for d in sim.deliveries(token=target)) == sorted(
        f"n-{n}" for n in range(200)
    )


def test_a_stream_limit_of_one_still_answers_everything(sim: Simulator, token):
    sim.faults("apns", max_concurrent_streams=1)

    responses, _ = post_many(
        f"{sim.apns_url}/3/device/{device()}", bodies(30), headers_for(token), sim.ca_path, in_flight=10
    )

    assert [r.status for r in responses] == [200] * 30
    stats = sim.control("GET", "/_sim/apns/connections").body
    assert stats["max_concurrent_streams"] == 1
    assert stats["refused"] == 0  # libcurl kept to the limit it was told
    assert sim.stats()["apns"]["accepted"] == 30


class RawH2:
    """A bare h2 client, to see the frames themselves.

    Every frame received is also kept raw, as (type, flags, stream id, payload): after a GOAWAY
    h2's client refuses the answers to the streams the server kept, which are the point.
    """

    def __init__(self, sim: Simulator) -> None:
        url = urlsplit(sim.apns_url)
        self.authority = url.netloc
        context = ssl.create_default_context(cafile=str(sim.ca_path))
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((url.hostname, url.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname=url.hostname)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.frames: list[tuple[int, int, int, bytes]] = []
        self._unparsed = b""
        self._h2_gave_up = False
        self.closed = False
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read_until(self, done, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.events):
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"never happened; events: {self.events}")
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                continue
            self._parse(data)
            if not self._h2_gave_up:
                try:
                    self.events += self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self._h2_gave_up = True
                self.flush()

    def _parse(self, data: bytes) -> None:
        self._unparsed += data
        while len(self._unparsed) >= 9:
            length = int.from_bytes(self._unparsed[:3], "big")
            if len(self._unparsed) < 9 + length:
                return
            kind, flags = self._unparsed[3], self._unparsed[4]
            stream_id = int.from_bytes(self._unparsed[5:9], "big") & 0x7FFFFFFF
            self.frames.append((kind, flags, stream_id, self._unparsed[9 : 9 + length]))
            self._unparsed = self._unparsed[9 + length :]

    def settings(self) -> dict[int, int]:
        self.read_until(lambda events: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events))
        changed = next(e for e in self.events if isinstance(e, h2.events.RemoteSettingsChanged))
        return {code: setting.new_value for code, setting in changed.changed_settings.items()}

    def post(self, token: str, body: bytes) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", self.authority),
            (":path", f"/3/device/{device()}"),
            *headers_for(token).items(),
        ]
        self.conn.send_headers(stream_id, headers)
        self.conn.send_data(stream_id, body, end_stream=True)
        return stream_id

    def ended(self, stream_id: int) -> bool:
        """A DATA or HEADERS frame with END_STREAM on this stream."""
        return any(kind in (0, 1) and flags & 1 and sid == stream_id for kind, flags, sid, _ in self.frames)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(sim: Simulator) -> Iterator[RawH2]:
    connection = RawH2(sim)
    yield connection
    connection.close()


MAX_STREAMS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS


def test_it_advertises_1000_streams_by_default(raw: RawH2):
    assert raw.settings()[MAX_STREAMS] == 1000


def test_a_stream_limit_fault_is_advertised_and_enforced_once_acknowledged(sim: Simulator, token):
    sim.faults("apns", max_concurrent_streams=1, latency_ms=300)
    connection = RawH2(sim)
    try:
        assert connection.settings()[MAX_STREAMS] == 1
        # Our client ACKed the SETTINGS; now make it ignore them and open three streams at once.
        connection.conn.remote_settings = h2.settings.Settings(
            client=False, initial_values={MAX_STREAMS: 100}
        )
        first, second, third = (connection.post(token, json.dumps(payload()).encode()) for _ in range(3))
        connection.flush()
        connection.read_until(lambda events: connection.ended(first))
    finally:
        connection.close()

    resets = {e.stream_id: e.error_code for e in connection.events if isinstance(e, h2.events.StreamReset)}
    assert resets == {second: h2.errors.ErrorCodes.REFUSED_STREAM, third: h2.errors.ErrorCodes.REFUSED_STREAM}
    assert sim.control("GET", "/_sim/apns/connections").body["refused"] == 2
    assert sim.stats()["apns"]["received"] == 1


def test_a_new_limit_reaches_open_connections(sim: Simulator, raw: RawH2, token):
    assert raw.settings()[MAX_STREAMS] == 1000
    raw.events.clear()
    sim.faults("apns", max_concurrent_streams=2)

    stream = raw.post(token, json.dumps(payload()).encode())
    raw.flush()
    raw.read_until(lambda events: raw.ended(stream))

    assert raw.settings()[MAX_STREAMS] == 2


def test_goaway_names_the_last_stream_processed_and_answers_it(sim: Simulator, raw: RawH2, token):
    raw.settings()
    sim.faults("apns", goaway_after=2)

    streams = [raw.post(token, json.dumps(payload(f"n-{n}")).encode()) for n in range(3)]
    raw.flush()
    raw.read_until(lambda events: raw.closed)

    [goaway] = [frame for kind, _, _, frame in raw.frames if kind == 7]
    assert int.from_bytes(goaway[:4], "big") == streams[1]  # last_stream_id
    assert int.from_bytes(goaway[4:8], "big") == h2.errors.ErrorCodes.NO_ERROR
    assert raw.ended(streams[0]) and raw.ended(streams[1])
    assert not raw.ended(streams[2])
    assert sim.stats()["apns"]["received"] == 2


def test_the_command_line_sets_the_advertised_limit(tmp_path):
    with running_simulator(tmp_path, "--apns-max-streams", "7") as own:
        connection = RawH2(own)
        try:
            assert connection.settings()[MAX_STREAMS] == 7
        finally:
            connection.close()


def test_reset_keeps_keys_and_clears_the_rest(sim: Simulator, client, key, token):
    sim.faults("apns", goaway_after=3)
    push(sim, client, token)

    sim.reset()

    assert sim.deliveries() == []
    assert sim.control("GET", "/_sim/faults").body == {}
    assert push(sim, client, token).status == 200
    assert key[0] in {k["key_id"] for k in sim.control("GET", "/_sim/apns/keys").body["keys"]}
