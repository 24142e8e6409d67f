"""schemathesis against Herald's MobileFirst schema (``GET /imfpush/v1/swagger.json``).

Every operation with a Bearer token of a confidential client allowed ``*`` that asked for every
scope and the application's ``push.application.<applicationId>``. Checks: no 5xx, and status
code, media type, headers and body as declared. ``make test`` runs a short, fixed sequence;
``make test-all`` the long, random one (at least 2,000 requests in all).
"""

from __future__ import annotations

import pytest

from tests.fuzz.support import CHECKS, LONG, RequestLog, load, run_all_operations, seed_ids, with_header

SCHEMA = "/imfpush/v1/swagger.json"
short_schema = load(SCHEMA, long=False)
long_schema = load(SCHEMA, long=True)
SHORT_LOG = RequestLog()
LONG_LOG = RequestLog()


def call(case, world, log: RequestLog) -> None:
    if case.operation.definition.raw.get("security"):
        with_header(case, "Authorization", f"Bearer {world.token}")
    seed_ids(case, world.ids)
    response = case.call()
    log.record(case.operation.label, response.status_code)
    case.validate_response(response, checks=CHECKS)


def test_imfpush_schema_short(mfp_world):
    # One test for every operation (one fixture setup), a few generated cases each.
    run_all_operations(short_schema, lambda case: call(case, mfp_world, SHORT_LOG))


@pytest.mark.slow
@long_schema.parametrize()
@LONG
def test_imfpush_schema_long(case, mfp_world):
    call(case, mfp_world, LONG_LOG)


def test_imfpush_schema_short_sent_requests():
    if not SHORT_LOG.total:
        pytest.skip("the short run did not run in this session")
    print("short:", SHORT_LOG.summary(), SHORT_LOG.details(), sep="\n")
    assert SHORT_LOG.total >= 150, SHORT_LOG.summary()
    assert len(SHORT_LOG.requests) == len(list(short_schema.get_all_operations()))


@pytest.mark.slow
def test_imfpush_schema_long_sent_at_least_2000_requests():
    if not LONG_LOG.total:
        pytest.skip("the long run did not run in this session")
    print("long:", LONG_LOG.summary(), LONG_LOG.details(), sep="\n")
    assert LONG_LOG.total >= 2000, LONG_LOG.summary()
