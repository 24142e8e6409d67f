"""Fault injection: which requests a simulated gateway answers with an error instead of accepting.

A plan is per platform and replaced wholesale by each ``POST /_sim/faults``. Decisions are made
in this order, for every request that passed authentication and validation:

1. ``fail_first``: the first N such requests get that error (deterministic, for tests);
2. ``token_errors``: a permanent error for one device token;
3. ``error_rates``: one draw from the plan's seeded random picks an error or none.

``latency_ms`` applies to every request; ``retry_after`` is sent on 429 and 503 answers.

Three more names are accepted wherever an error name is, on every platform, for faults below the
gateway's own answers (``ConnectionFault``, acted on by ``httpserver`` and the SMTP handler):
``_timeout`` (the request is never answered: the client must give up), ``_reset`` (HTTP/2
RST_STREAM, or the HTTP/1.1 or SMTP connection aborted) and ``_malformed`` (a 502 whose body is an
HTML page, not the gateway's format, as a broken load balancer answers). None of them is recorded
as a delivery: the gateway never took the message.

Two connection-level faults act on HTTP/2 itself (``httpserver.ConnectionPolicy``), for the
gateways that serve them: ``goaway_after`` (a GOAWAY after N streams on each connection) and
``max_concurrent_streams`` (the SETTINGS limit advertised, on open connections too).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KNOWN_KEYS = {
    "platform",
    "error_rates",
    "retry_after",
    "latency_ms",
    "token_errors",
    "fail_first",
    "seed",
    "goaway_after",
    "max_concurrent_streams",
}


CONNECTION_FAULTS = ("_timeout", "_reset", "_malformed")


class FaultConfigError(ValueError):
    """The control API answers 400 with this message."""


class ConnectionFault(Exception):
    """Raised by ``FaultPlan.pick`` for a connection-level fault (``kind`` one of CONNECTION_FAULTS)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class FaultPlan:
    error_rates: dict[str, float] = field(default_factory=dict)
    retry_after: int | None = None
    latency_ms: float = 0.0
    token_errors: dict[str, str] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    goaway_after: int | None = None
    max_concurrent_streams: int | None = None
    # What is left of fail_first, consumed in the order given.
    _pending: list[list[Any]] = field(default_factory=list, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    # Cumulative thresholds so a request costs one draw and a short scan.
    _thresholds: list[tuple[float, str]] = field(default_factory=list, repr=False)

    @classmethod
    def parse(cls, body: Mapping[str, Any], errors: Mapping[str, int]) -> FaultPlan:
        """Validate a control-API body against the platform's error catalogue ``errors``."""
        unknown = set(body) - KNOWN_KEYS
        if unknown:
            raise FaultConfigError(f"unknown keys: {', '.join(sorted(unknown))}")

        def code(value: Any, where: str) -> str:
            if value not in errors and value not in CONNECTION_FAULTS:
                known = ", ".join([*errors, *CONNECTION_FAULTS])
                raise FaultConfigError(f"{where}: unknown error {value!r}; known: {known}")
            return value

        rates = _mapping(body.get("error_rates"), "error_rates")
        plan = cls()
        for name, rate in rates.items():
            if not _number(rate) or not 0 <= rate <= 1:
                raise FaultConfigError(f"error_rates.{name}: a number between 0 and 1")
            plan.error_rates[code(name, "error_rates")] = float(rate)
        if sum(plan.error_rates.values()) > 1 + 1e-9:
            raise FaultConfigError("error_rates add up to more than 1")

        retry_after = body.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise FaultConfigError("retry_after: a non-negative integer (seconds)")
        plan.retry_after = retry_after

        latency = body.get("latency_ms", 0)
        if not _number(latency) or latency < 0:
            raise FaultConfigError("latency_ms: a non-negative number")
        plan.latency_ms = float(latency)

        for token, error in _mapping(body.get("token_errors"), "token_errors").items():
            plan.token_errors[token] = code(error, f"token_errors.{token}")

        for name, count in _mapping(body.get("fail_first"), "fail_first").items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise FaultConfigError(f"fail_first.{name}: a non-negative integer")
            plan.fail_first[code(name, "fail_first")] = count

        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise FaultConfigError("seed: an integer")
        plan.seed = seed
        for name in ("goaway_after", "max_concurrent_streams"):
            value = body.get(name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31
            ):
                raise FaultConfigError(f"{name}: a positive integer below 2**31")
            setattr(plan, name, value)
        plan._rng = random.Random(seed)
        plan._pending = [[name, n] for name, n in plan.fail_first.items() if n]
        total = 0.0
        for name, rate in plan.error_rates.items():
            total += rate
            plan._thresholds.append((total, name))
        return plan

    def pick(self, token: str | None) -> str | None:
        """The error to answer this request with, or None to accept it; raises ConnectionFault for
        a connection-level fault."""
        error = self._pick(token)
        if error in CONNECTION_FAULTS:
            raise ConnectionFault(error)
        return error

    def _pick(self, token: str | None) -> str | None:
        if self._pending:
            head = self._pending[0]
            head[1] -= 1
            if head[1] == 0:
                self._pending.pop(0)
            return head[0]
        if token is not None and self.token_errors:
            error = self.token_errors.get(token)
            if error is not None:
                return error
        if self._thresholds:
            draw = self._rng.random()
            for threshold, name in self._thresholds:
                if draw < threshold:
                    return name
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "error_rates": self.error_rates,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "token_errors": self.token_errors,
            "fail_first": self.fail_first,
            "fail_first_remaining": {name: n for name, n in self._pending},
            "seed": self.seed,
            "goaway_after": self.goaway_after,
            "max_concurrent_streams": self.max_concurrent_streams,
        }


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FaultConfigError(f"{where}: an object")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
