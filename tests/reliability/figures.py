"""What a reliability run measured, printed as one JSON line (``RELIABILITY`` prefix) and appended to
``$HERALD_RELIABILITY_LOG`` when set, so that RELIABILITY.md quotes the run's own figures."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from typing import Any

from tests.gatewaysim.simulator import Simulator


def report(test: str, **figures: Any) -> dict[str, Any]:
    record = {
        "test": test,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "load": os.getloadavg()[0],
        **figures,
    }
    line = json.dumps(record, sort_keys=False, default=str)
    print("RELIABILITY " + line)
    path = os.environ.get("HERALD_RELIABILITY_LOG")
    if path:
        with open(path, "a") as log:
            log.write(line + "\n")
    return record


def fcm_notification_of(delivery: dict) -> str:
    return json.loads(delivery["payload"]["data"]["custom"])["i"]


def accepted_per_token(sim: Simulator, platform_: str = "fcm") -> Counter:
    """How many accepted sends each token got, from the simulator's per-delivery records."""
    return Counter(d["token"] for d in sim.deliveries(platform=platform_) if d["status"] < 300)


def tally(sim: Simulator, tokens: list[str], *, platform_: str = "fcm", detailed: bool = True) -> dict:
    """Lost and duplicated recipients by the simulator's evidence.

    ``detailed``: token by token from ``/_sim/deliveries``. Otherwise from ``/_sim/stats``, whose
    ``accepted`` counts every accepted send and ``duplicates`` those of a (token, notification)
    accepted before: ``accepted - duplicates`` distinct recipients reached (used for runs too large
    to list).
    """
    stats = sim.stats()[platform_]
    if detailed:
        per_token = accepted_per_token(sim, platform_)
        wanted = set(tokens)
        reached = wanted & set(per_token)
        return {
            "accepted": stats["accepted"],
            "rejected": stats["rejected"],
            "distinct_reached": len(reached),
            "lost": len(wanted - reached),
            "strangers": len(set(per_token) - wanted),
            "duplicates": sum(count - 1 for count in per_token.values()),
            "sim_duplicates": stats["duplicates"],
        }
    distinct = stats["accepted"] - stats["duplicates"]
    return {
        "accepted": stats["accepted"],
        "rejected": stats["rejected"],
        "distinct_reached": distinct,
        "lost": len(tokens) - distinct,
        "strangers": None,
        "duplicates": stats["duplicates"],
        "sim_duplicates": stats["duplicates"],
    }
