"""Send one webhook call (work in progress)."""

from __future__ import annotations


def webhook_call_deliver(*, call_id: int) -> float | None:
    return None
