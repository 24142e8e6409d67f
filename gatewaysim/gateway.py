"""The shape every simulated gateway takes, so that APNs, Web Push, WNS and the rest slot in beside FCM.

A gateway is an ASGI app served on its own port. It:

- names its platform (a key of ``state.PLATFORMS``) and its fault catalogue, mapping each error
  name that ``POST /_sim/faults`` accepts to the HTTP status it is answered with;
- records every request that reaches its delivery handler with ``SimState.record``;
- may add platform-specific control routes (FCM registers service-account keys);
- clears its own state (issued tokens and the like) on ``POST /_sim/reset``.

``server.py`` serves every gateway listed in ``server.GATEWAYS`` and adds
a ``--<platform>-port`` option for each. A gateway may also add its own options
(``add_arguments``/``configure``), its own TLS context (``server_ssl_context``, for client
certificates) and an HTTP/2 ``ConnectionPolicy`` (``connection_policy``, for stream limits and
GOAWAY faults).
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from gatewaysim.asgi import Receive, Scope, Send
from gatewaysim.httpserver import MAX_CONCURRENT_STREAMS, ConnectionPolicy, StreamLimits
from gatewaysim.state import SimState
from gatewaysim.tls import TlsFiles

# (query parameters, JSON body) -> (HTTP status, JSON-able answer)
ControlHandler = Callable[[dict[str, str], Any], Awaitable[tuple[int, Any]]]


class Gateway:
    platform: ClassVar[str]
    errors: ClassVar[Mapping[str, int]]
    tls: ClassVar[bool] = True
    default_port: ClassVar[int]

    def __init__(self, state: SimState) -> None:
        self.state = state
        state.decoders[self.platform] = self.decode_payload
        state.on_reset(self.reset)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    def decode_payload(self, body: bytes) -> Any:
        """What the device would see, from a recorded request body."""
        return body.decode("utf-8", "replace")

    def control_routes(self) -> dict[tuple[str, str], ControlHandler]:
        return {}

    def reset(self, keep_tokens: bool) -> None:
        """Forget per-run state; ``keep_tokens`` keeps issued auth tokens valid."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Command-line options of this gateway, beside ``--<platform>-port``."""

    def configure(self, args: argparse.Namespace) -> None:
        """Read this gateway's options, before it is served."""

    def server_ssl_context(self, files: TlsFiles, default: ssl.SSLContext) -> ssl.SSLContext:
        """The TLS context of this gateway's port; the shared one unless it needs another."""
        return default

    def connection_policy(self) -> ConnectionPolicy | None:
        """HTTP/2 stream limits and GOAWAY for this gateway's connections: by default the fault
        plan's ``goaway_after`` and ``max_concurrent_streams``, so every HTTP/2 gateway can send
        GOAWAY."""
        return PlanPolicy(self.state, self.platform)


class PlanPolicy:
    """A ``ConnectionPolicy`` read from the platform's fault plan, as each stream opens."""

    def __init__(self, state: SimState, platform: str) -> None:
        self.state = state
        self.platform = platform

    def stream_limits(self) -> StreamLimits:
        plan = self.state.faults.get(self.platform)
        if plan is None:
            return StreamLimits()
        return StreamLimits(plan.max_concurrent_streams or MAX_CONCURRENT_STREAMS, plan.goaway_after)

    def connection_event(self, event: str) -> None:
        pass
