"""The APNs simulator: ``POST /3/device/<token>`` over HTTP/2 and TLS, answered as api.push.apple.com does.

A send is answered in this order, and every send is recorded whatever the answer:

1. the method and path: 405 ``MethodNotAllowed``, 404 ``BadPath``;
2. authentication, 403: a provider token (``authorization: bearer <JWT>``, ES256, header ``kid``,
   claims ``iss`` = team id and ``iat``) verified with the key registered for that ``kid``
   (``POST /_sim/apns/keys``): ``MissingProviderToken``, ``InvalidProviderToken`` (bad signature,
   unknown kid, wrong team), ``ExpiredProviderToken`` (``iat`` over an hour old, or a token this
   simulator already answered ``ExpiredProviderToken``); or a client certificate issued by the
   simulator's CA (certificate-based auth, the topic is the certificate's UID). With
   ``strict_token_updates`` on a key, a new token less than 20 minutes after the previous one
   gets 429 ``TooManyProviderTokenUpdates`` (unless the previous one was refused as expired);
3. the device token (hex): 400 ``MissingDeviceToken``, ``BadDeviceToken``;
4. the headers, 400: ``MissingTopic``, ``TopicDisallowed`` (a topic outside the key's registered
   topics or the certificate's), ``InvalidPushType`` (unknown type, or a topic without the type's
   suffix such as ``.voip``), ``BadPriority`` (not 10/5/1, or 10 for ``background``),
   ``BadExpirationDate``, ``BadCollapseId`` (over 64 bytes), ``BadMessageId``, ``DuplicateHeaders``;
5. the payload: 400 ``PayloadEmpty``; 413 ``PayloadTooLarge`` (over 4096 bytes, 5120 for VoIP);
   400 ``BadPayload`` (simulator-specific: not a JSON object with an ``aps`` object, or, for a
   Website Push ID topic ``web.*`` (legacy Safari), an ``aps`` without an ``alert`` object holding
   string ``title`` and ``body`` or without ``url-args``, a list of strings: Safari would not show
   it, though Apple's gateway accepts it);
6. the fault plan (``faults.py``): an error name -> its status, ``{"reason"}`` body;
7. otherwise 200 with an ``apns-id`` header and an empty body. An accepted send whose
   (token, ``custom.i``) was accepted before is a duplicate (OneSignal puts the notification id
   in ``custom.i``; without it the identity is the payload's digest).

Errors carry ``{"reason": ...}``, plus ``timestamp`` (ms) for 410. ``apns-id`` is echoed on every
answer. Recorded headers are the request's (``authorization`` redacted) plus the simulator's
notes: ``x-sim-auth`` (token/certificate), ``x-sim-jwt`` (a digest of the JWT, so that tests can
see a token being reused without seeing it), ``x-sim-jwt-iat``, ``x-sim-reason`` and
``x-sim-apns-id``.

Topics: a provider key allows the topics it was registered with (``POST /_sim/apns/keys``
``topics``, e.g. ``["com.example.app", "web.com.example"]``; none given: any), a client certificate
the topic in its subject's UID (a Safari Website Push ID certificate: ``web.com.example``).

The connection faults ``goaway_after`` and ``max_concurrent_streams`` (also ``--apns-max-streams``)
are applied by ``httpserver`` through this gateway's ``ConnectionPolicy``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import ssl
import string
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509.oid import NameOID

from gatewaysim.asgi import BodyTooLarge, Header, Receive, Scope, Send, lifespan, read_body, respond
from gatewaysim.faults import FaultPlan
from gatewaysim.gateway import ControlHandler, Gateway
from gatewaysim.httpserver import MAX_CONCURRENT_STREAMS, ConnectionPolicy, StreamLimits, tls_context
from gatewaysim.state import SimState
from gatewaysim.tls import TlsFiles

PATH_PREFIX = "/3/device/"
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
MAX_COLLAPSE_ID = 64
TOKEN_MAX_AGE = 3600
TOKEN_CLOCK_SKEW = 60
TOKEN_UPDATE_INTERVAL = 20 * 60
VERIFIED_CACHE_SIZE = 4096
HEX_DIGITS = frozenset(string.hexdigits)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Apple's reasons (Handling notification responses from APNs) -> status; the fault catalogue.
APNS_ERRORS: dict[str, int] = {
    "BadCollapseId": 400,
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "BadTopic": 400,
    "DeviceTokenNotForTopic": 400,
    "DuplicateHeaders": 400,
    "IdleTimeout": 400,
    "InvalidPushType": 400,
    "MissingDeviceToken": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "BadPayload": 400,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "ExpiredProviderToken": 403,
    "Forbidden": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "ExpiredToken": 410,
    "Unregistered": 410,
    "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
}
RETRY_AFTER_STATUSES = (429, 503)
WEBSITE_PUSH_PREFIX = "web."
# apns-push-type -> the suffix its apns-topic must carry ("" : the bundle id itself, not checked).
PUSH_TYPES: dict[str, str] = {
    "alert": "",
    "background": "",
    "location": ".location-query",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "mdm": "",
    "liveactivity": ".push-type.liveactivity",
    "pushtotalk": ".voip-ptt",
    "widgets": ".push-type.widgets",
    "controls": ".push-type.controls",
}
TOPIC_SUFFIXES = tuple(sorted({suffix for suffix in PUSH_TYPES.values() if suffix}, key=len, reverse=True))
SINGLE_HEADERS = (
    b"apns-topic",
    b"apns-push-type",
    b"apns-priority",
    b"apns-expiration",
    b"apns-collapse-id",
    b"apns-id",
    b"authorization",
)
ERROR_BODIES = {reason: orjson.dumps({"reason": reason}) for reason in APNS_ERRORS}


@dataclass
class ProviderKey:
    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    topics: frozenset[str] | None
    strict_token_updates: bool = False
    # The JWT in use, when this simulator first saw it, and how many distinct JWTs it has seen.
    current: str | None = None
    current_since: float = 0.0
    tokens_seen: int = 0
    refused_updates: int = 0


@dataclass
class Auth:
    kind: str  # "token" or "certificate"
    topics: frozenset[str] | None  # base topics allowed; None: any
    jwt_digest: str = ""
    iat: int = 0
    token: str = ""


class AuthError(Exception):
    def __init__(self, reason: str, auth: Auth | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.auth = auth


class ProviderTokens:
    """Provider-token (JWT) verification against registered keys, with a small verified cache."""

    def __init__(self) -> None:
        self.keys: dict[str, ProviderKey] = {}
        # token -> (its key, iat, digest), so a reused token costs a dictionary lookup.
        self._verified: dict[str, tuple[ProviderKey, int, str]] = {}
        self._expired: set[str] = set()

    def register(
        self,
        key_id: str,
        team_id: str,
        public_key_pem: str,
        topics: list[str] | None,
        strict_token_updates: bool,
    ) -> None:
        data = public_key_pem.encode()
        if b"CERTIFICATE" in data:
            public_key = x509.load_pem_x509_certificate(data).public_key()
        else:
            public_key = load_pem_public_key(data)
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise ValueError("an APNs auth key is a P-256 (ES256) key")
        self.keys[key_id] = ProviderKey(
            key_id,
            team_id,
            public_key,
            frozenset(topics) if topics is not None else None,
            strict_token_updates,
        )
        self._verified = {t: v for t, v in self._verified.items() if v[0].key_id != key_id}

    def reset(self) -> None:
        self._verified.clear()
        self._expired.clear()
        for key in self.keys.values():
            key.current, key.current_since, key.tokens_seen, key.refused_updates = None, 0.0, 0, 0

    def expire(self, token: str) -> None:
        self._expired.add(token)

    def check(self, token: str, now: float) -> Auth:
        cached = self._verified.get(token)
        if cached is None:
            key, iat = self._verify(token, now)
            digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        else:
            key, iat, digest = cached
        auth = Auth("token", key.topics, digest, iat, token)
        if token in self._expired or now - iat > TOKEN_MAX_AGE:
            raise AuthError("ExpiredProviderToken", auth)
        if cached is None:
            if (
                key.strict_token_updates
                and key.current is not None
                and key.current not in self._expired
                and now - key.current_since < TOKEN_UPDATE_INTERVAL
            ):
                key.refused_updates += 1
                raise AuthError("TooManyProviderTokenUpdates", auth)
            key.current, key.current_since = token, now
            key.tokens_seen += 1
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = (key, iat, digest)
        return auth

    def _verify(self, token: str, now: float) -> tuple[ProviderKey, int]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthError("InvalidProviderToken") from error
        key = self.keys.get(str(header.get("kid")))
        if header.get("alg") != "ES256" or key is None:
            raise AuthError("InvalidProviderToken")
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise AuthError("InvalidProviderToken") from error
        iat = claims.get("iat")
        if claims.get("iss") != key.team_id or not isinstance(iat, int) or isinstance(iat, bool):
            raise AuthError("InvalidProviderToken")
        if iat > now + TOKEN_CLOCK_SKEW:
            raise AuthError("InvalidProviderToken")
        return key, iat


class ApnsGateway(Gateway):
    platform = "apns"
    errors = APNS_ERRORS
    default_port = 9102

    def __init__(self, state: SimState) -> None:
        super().__init__(state)
        self.tokens = ProviderTokens()
        self.max_streams = MAX_CONCURRENT_STREAMS
        self.connection_stats: Counter[str] = Counter()
        # Sends being answered now, and the most at once since the last reset (stream limits).
        self.in_flight = 0
        self.peak_in_flight = 0
        self._certificates: dict[str, frozenset[str]] = {}

    # --- configuration -------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--apns-max-streams",
            type=_stream_limit,
            default=MAX_CONCURRENT_STREAMS,
            help="SETTINGS_MAX_CONCURRENT_STREAMS the APNs simulator advertises; the fault "
            "max_concurrent_streams overrides it (default: %(default)s)",
        )

    def configure(self, args: argparse.Namespace) -> None:
        self.max_streams = args.apns_max_streams

    def server_ssl_context(self, files: TlsFiles, default: ssl.SSLContext) -> ssl.SSLContext:
        """Like the others, but asking for an (optional) client certificate from the CA."""
        context = tls_context(str(files.cert_path), str(files.key_path))
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=str(files.ca_path))
        return context

    def connection_policy(self) -> ConnectionPolicy:
        return self

    def stream_limits(self) -> StreamLimits:
        plan = self.state.faults.get(self.platform)
        if plan is None:
            return StreamLimits(self.max_streams)
        return StreamLimits(plan.max_concurrent_streams or self.max_streams, plan.goaway_after)

    def connection_event(self, event: str) -> None:
        self.connection_stats[event] += 1

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {
            ("POST", "/_sim/apns/keys"): self._register_key,
            ("GET", "/_sim/apns/keys"): self._list_keys,
            ("GET", "/_sim/apns/connections"): self._connections,
        }

    def reset(self, keep_tokens: bool) -> None:
        if not keep_tokens:
            self.tokens.reset()
        self.connection_stats.clear()
        self.peak_in_flight = self.in_flight

    def decode_payload(self, body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")

    # --- sends ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await self._send(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _send(self, scope: Scope, receive: Receive, send: Send) -> None:
        received_at = time.time()
        try:
            body = await read_body(receive)
        except BodyTooLarge:
            body = None
        plan = self.state.faults.get(self.platform)
        if plan is not None and plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        headers = _headers(scope)
        apns_id = headers.get(b"apns-id", [b""])[0].decode("latin-1")
        if not UUID_RE.match(apns_id):
            apns_id = str(uuid.uuid4()).upper()
        notes: list[Header] = []
        status, reason, token, duplicate = self._answer(scope, headers, body, plan, notes)
        notes.append((b"x-sim-reason", reason.encode()) if reason else (b"x-sim-apns-id", apns_id.encode()))
        self.state.record(
            self.platform,
            token=token,
            status=status,
            headers=[*scope["headers"], *notes],
            body=body or b"",
            duplicate=duplicate,
            received_at=received_at,
        )
        answer_headers: list[Header] = [(b"apns-id", apns_id.encode())]
        if not reason:
            await respond(send, 200, b"", answer_headers)
            return
        if plan is not None and plan.retry_after is not None and status in RETRY_AFTER_STATUSES:
            answer_headers.append((b"retry-after", b"%d" % plan.retry_after))
        answer = ERROR_BODIES[reason]
        if status == 410:
            answer = orjson.dumps({"reason": reason, "timestamp": int(received_at * 1000)})
        await respond(send, status, answer, answer_headers)

    def _answer(
        self,
        scope: Scope,
        headers: dict[bytes, list[bytes]],
        body: bytes | None,
        plan: FaultPlan | None,
        notes: list[Header],
    ) -> tuple[int, str, str | None, bool]:
        """(status, reason or "", device token, duplicate) for one request."""
        path: str = scope["path"]
        token = path[len(PATH_PREFIX) :] if path.startswith(PATH_PREFIX) else None
        if token is None or "/" in token:
            return 404, "BadPath", None, False
        if scope["method"] != "POST":
            return 405, "MethodNotAllowed", token, False

        try:
            auth = self._authenticate(scope, headers)
        except AuthError as error:
            _note_auth(notes, error.auth)
            return APNS_ERRORS[error.reason], error.reason, token, False
        _note_auth(notes, auth)

        if not token:
            return 400, "MissingDeviceToken", token, False
        if len(token) % 2 or not HEX_DIGITS.issuperset(token):
            return 400, "BadDeviceToken", token, False

        reason, push_type, topic = _check_headers(headers, auth)
        if reason:
            return APNS_ERRORS[reason], reason, token, False

        if body is None:
            return 413, "PayloadTooLarge", token, False
        if not body.strip():
            return 400, "PayloadEmpty", token, False
        if len(body) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
            return 413, "PayloadTooLarge", token, False
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return 400, "BadPayload", token, False
        if topic.startswith(WEBSITE_PUSH_PREFIX) and not _website_push_payload(payload["aps"]):
            return 400, "BadPayload", token, False

        if plan is not None:
            error = plan.pick(token)
            if error is not None:
                if error == "ExpiredProviderToken" and auth.kind == "token":
                    self.tokens.expire(auth.token)  # expired for good, as a real old token is
                return APNS_ERRORS[error], error, token, False

        custom = payload.get("custom")
        identity = custom.get("i") if isinstance(custom, dict) else None
        if not isinstance(identity, str):
            identity = hashlib.sha256(body).hexdigest()
        return 200, "", token, self.state.seen_before(self.platform, token, identity)

    def _authenticate(self, scope: Scope, headers: dict[bytes, list[bytes]]) -> Auth:
        values = headers.get(b"authorization")
        if values:
            scheme, _, token = values[0].decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("InvalidProviderToken")
            return self.tokens.check(token.strip(), time.time())
        chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
        if chain:
            return Auth("certificate", self._certificate_topics(chain[0]))
        raise AuthError("MissingProviderToken")

    def _certificate_topics(self, pem: str) -> frozenset[str]:
        """The bundle id a push certificate is for: its subject's UID, as Apple issues them."""
        topics = self._certificates.get(pem)
        if topics is None:
            certificate = x509.load_pem_x509_certificate(pem.encode())
            uids = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
            topics = frozenset(str(uid.value) for uid in uids)
            if len(self._certificates) > 1024:
                self._certificates.clear()
            self._certificates[pem] = topics
        return topics

    # --- control routes ------------------------------------------------------------------------

    async def _register_key(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(name), str) and body[name] for name in ("key_id", "team_id", "public_key_pem")
        ):
            return 400, {"error": "key_id, team_id and public_key_pem (PEM strings) are required"}
        topics = body.get("topics")
        if topics is not None and (
            not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics)
        ):
            return 400, {"error": "topics: a list of bundle ids"}
        strict = body.get("strict_token_updates", False)
        if not isinstance(strict, bool):
            return 400, {"error": "strict_token_updates: a boolean"}
        try:
            self.tokens.register(body["key_id"], body["team_id"], body["public_key_pem"], topics, strict)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            return 400, {"error": f"public_key_pem: {error}"}
        return 201, {"key_id": body["key_id"], "team_id": body["team_id"], "topics": topics}

    async def _list_keys(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {
            "keys": [
                {
                    "key_id": key.key_id,
                    "team_id": key.team_id,
                    "topics": sorted(key.topics) if key.topics is not None else None,
                    "strict_token_updates": key.strict_token_updates,
                    "tokens_seen": key.tokens_seen,
                    "refused_updates": key.refused_updates,
                }
                for key in self.tokens.keys.values()
            ]
        }

    async def _connections(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        limits = self.stream_limits()
        return 200, {
            "opened": self.connection_stats["opened"],
            "goaway": self.connection_stats["goaway"],
            "refused": self.connection_stats["refused"],
            "peak_in_flight": self.peak_in_flight,
            "max_concurrent_streams": limits.max_concurrent_streams,
            "goaway_after": limits.goaway_after,
        }


def _stream_limit(value: str) -> int:
    number = int(value)
    if not 0 < number < 2**31:
        raise argparse.ArgumentTypeError("a stream limit is between 1 and 2**31 - 1")
    return number


def _headers(scope: Scope) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.lower(), []).append(value)
    return found


def _note_auth(notes: list[Header], auth: Auth | None) -> None:
    if auth is None:
        return
    notes.append((b"x-sim-auth", auth.kind.encode()))
    if auth.kind == "token":
        notes.append((b"x-sim-jwt", auth.jwt_digest.encode()))
        notes.append((b"x-sim-jwt-iat", b"%d" % auth.iat))


def _base_topic(topic: str) -> str:
    for suffix in TOPIC_SUFFIXES:
        if topic.endswith(suffix):
            return topic[: -len(suffix)]
    return topic


def _website_push_payload(aps: dict[str, Any]) -> bool:
    """Whether legacy Safari can show it: an alert with a title and a body, and url-args for the
    push package's urlFormatString (Apple's "Configuring Safari Push Notifications")."""
    alert, args = aps.get("alert"), aps.get("url-args")
    return (
        isinstance(alert, dict)
        and isinstance(alert.get("title"), str)
        and isinstance(alert.get("body"), str)
        and isinstance(args, list)
        and all(isinstance(arg, str) for arg in args)
    )


def _check_headers(headers: dict[bytes, list[bytes]], auth: Auth) -> tuple[str, str, str]:
    """("" or the reason to refuse, the push type, the topic)."""

    def one(name: bytes) -> str | None:
        values = headers.get(name)
        return values[0].decode("latin-1").strip() if values else None

    if any(len(headers.get(name, ())) > 1 for name in SINGLE_HEADERS):
        return "DuplicateHeaders", "", ""
    push_type = one(b"apns-push-type") or "alert"
    if push_type not in PUSH_TYPES:
        return "InvalidPushType", push_type, ""
    topic = one(b"apns-topic")
    if not topic:
        if auth.kind == "certificate" and auth.topics:
            topic = min(auth.topics)  # certificate auth: the certificate's own topic
        else:
            return "MissingTopic", push_type, ""
    if auth.topics is not None and _base_topic(topic) not in auth.topics:
        return "TopicDisallowed", push_type, topic
    suffix = PUSH_TYPES[push_type]
    if suffix and not topic.endswith(suffix):
        return "InvalidPushType", push_type, topic
    priority = one(b"apns-priority")
    if priority is not None and (
        priority not in ("10", "5", "1") or (priority == "10" and push_type == "background")
    ):
        return "BadPriority", push_type, topic
    expiration = one(b"apns-expiration")
    if expiration is not None and not expiration.isdigit():
        return "BadExpirationDate", push_type, topic
    collapse_id = headers.get(b"apns-collapse-id")
    if collapse_id and len(collapse_id[0]) > MAX_COLLAPSE_ID:
        return "BadCollapseId", push_type, topic
    apns_id = one(b"apns-id")
    if apns_id is not None and not UUID_RE.match(apns_id):
        return "BadMessageId", push_type, topic
    return "", push_type, topic
