"""The shape every simulated gateway takes, so that APNs, Web Push, WNS and the rest slot in beside FCM.

A gateway is an ASGI app served on its own port. It:

- names its platform (a key of ``state.PLATFORMS``) and its fault catalogue, mapping each error
  name that ``POST /_sim/faults`` accepts to the HTTP status it is answered with;
- records every request that reaches its delivery handler with ``SimState.record``;
- may add platform-specific control routes (FCM registers service-account keys);
- clears its own state (issued tokens and the like) on ``POST /_sim/reset``.

``server.py`` serves every gateway listed in ``server.GATEWAYS`` and adds
a ``--<platform>-port`` option for each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from gatewaysim.asgi import Receive, Scope, Send
from gatewaysim.state import SimState

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
