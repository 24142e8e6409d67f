from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def loopback_allowed(settings):
    """Receivers run on 127.0.0.1, which the SSRF rule refuses unless the deployment allows it."""
    settings.HERALD_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def receiver(loopback_allowed) -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Call ids handed to the broker (captured instead of sent: no worker runs here)."""
    from webhooks.tasks import webhook_deliver_task

    sent: list[int] = []
    monkeypatch.setattr(webhook_deliver_task, "delay", lambda call_id, **kw: sent.append(call_id))
    return sent
