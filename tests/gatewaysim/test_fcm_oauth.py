"""The OAuth token endpoint that stands in for Google's ``token_uri``."""

from __future__ import annotations

import time

import google.auth.transport.requests
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from tests.gatewaysim.simulator import Simulator


def test_it_issues_a_bearer_token_for_a_registered_account(sim: Simulator, account):
    response = sim.fcm_token_request(sim.fcm_assertion(account))

    assert response.status == 200
    assert set(response.body) == {"access_token", "expires_in", "token_type"}
    assert response.body["expires_in"] == 3600
    assert response.body["token_type"] == "Bearer"
    assert len(response.body["access_token"]) > 20


def test_it_gives_google_auth_service_account_credentials_a_token(sim: Simulator, account):
    credentials = service_account.Credentials.from_service_account_info(
        account, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    session = requests.Session()
    session.verify = str(sim.ca_path)
    # Otherwise REQUESTS_CA_BUNDLE, when set, silently wins over session.verify.
    session.trust_env = False

    credentials.refresh(google.auth.transport.requests.Request(session))

    assert credentials.token
    assert credentials.valid


def test_it_accepts_an_unregistered_issuer_without_verifying_its_signature(sim: Simulator):
    account = sim.fcm_service_account(register=False)

    assert sim.fcm_token_request(sim.fcm_assertion(account)).status == 200


def test_it_accepts_the_cloud_platform_scope(sim: Simulator, account):
    assertion = sim.fcm_assertion(account, scope="openid https://www.googleapis.com/auth/cloud-platform")

    assert sim.fcm_token_request(assertion).status == 200


def test_it_rejects_a_signature_from_another_key(sim: Simulator, account):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "aud": account["token_uri"],
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "iat": now,
        "exp": now + 3600,
    }
    response = sim.fcm_token_request(jwt.encode(claims, other, algorithm="RS256"))

    assert response.status == 400
    assert response.body == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}


# Times are offsets from the moment the test runs, not from collection: a long suite can run this
# test many minutes after collection, and an absolute "ten minutes ahead" would have become the past.
@pytest.mark.parametrize(
    ("claims", "mentions"),
    [
        ({"iss": None}, "iss"),
        ({"aud": "https://example.com/token"}, "audience"),
        ({"exp": -10, "iat": -100}, "iat and exp"),
        ({"iat": 600, "exp": 1200}, "iat and exp"),
        ({"exp": 7200}, "short-lived"),
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "scope"),
        ({"scope": None}, "scope"),
    ],
    ids=["no-iss", "wrong-aud", "expired", "iat-in-future", "too-long-lived", "wrong-scope", "no-scope"],
)
def test_it_rejects_bad_claims_with_invalid_grant(sim: Simulator, account, claims, mentions):
    now = int(time.time())
    claims = {name: now + value if name in {"iat", "exp"} else value for name, value in claims.items()}
    response = sim.fcm_token_request(sim.fcm_assertion(account, **claims))

    assert response.status == 400
    assert response.body["error"] == "invalid_grant"
    assert mentions in response.body["error_description"]


def test_it_tolerates_a_minute_of_clock_skew(sim: Simulator, account):
    now = int(time.time())
    assertion = sim.fcm_assertion(account, iat=now + 30, exp=now + 3600)

    assert sim.fcm_token_request(assertion).status == 200


def test_it_accepts_googles_audience_which_google_auth_always_signs_for(sim: Simulator, account):
    assertion = sim.fcm_assertion(account, aud="https://oauth2.googleapis.com/token")

    assert sim.fcm_token_request(assertion).status == 200


def test_it_rejects_garbage_and_unsigned_assertions(sim: Simulator, account):
    unsigned = jwt.encode({"iss": account["client_email"]}, key=None, algorithm="none")

    for assertion in ("not-a-jwt", unsigned):
        response = sim.fcm_token_request(assertion)
        assert response.status == 400
        assert response.body["error"] == "invalid_grant"


def test_it_rejects_another_grant_type(sim: Simulator, account):
    response = sim.fcm_token_request(sim.fcm_assertion(account), grant_type="client_credentials")

    assert response.status == 400
    assert response.body["error"] == "unsupported_grant_type"


def test_registering_an_account_needs_an_rsa_public_key(sim: Simulator):
    response = sim.control("POST", "/_sim/fcm/accounts", {"client_email": "a@b", "public_key_pem": "nope"})

    assert response.status == 400
