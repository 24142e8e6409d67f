"""The control API (plain HTTP, JSON): evidence of what the gateways received, and fault injection.

- GET /_sim/stats: {"<platform>": {"received", "accepted", "rejected", "duplicates"}, ...}
- GET /_sim/deliveries?platform=&token=&limit= (all optional; limit keeps the most recent):
  {"deliveries": [{platform, token, status, headers, payload, received_at, duplicate}, ...]},
  oldest first
- GET /_sim/faults: {"<platform>": <current plan>, ...}
- POST /_sim/faults {"platform": "fcm", ...plan}: replaces that platform's plan (see faults.py)
- POST /_sim/reset {"keep_tokens"?: bool}
- each gateway's own routes (FCM: POST /_sim/fcm/accounts).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from gatewaysim.asgi import BodyTooLarge, Receive, Scope, Send, lifespan, read_body, respond_json
from gatewaysim.faults import FaultConfigError, FaultPlan
from gatewaysim.gateway import ControlHandler, Gateway
from gatewaysim.state import PLATFORMS, SimState


class ControlApp:
    def __init__(self, state: SimState, gateways: list[Gateway]) -> None:
        self.state = state
        self.gateways = {gateway.platform: gateway for gateway in gateways}
        self.routes: dict[tuple[str, str], ControlHandler] = {
            ("GET", "/_sim/stats"): self.stats,
            ("GET", "/_sim/deliveries"): self.deliveries,
            ("GET", "/_sim/faults"): self.get_faults,
            ("POST", "/_sim/faults"): self.set_faults,
            ("POST", "/_sim/reset"): self.reset,
        }
        for gateway in gateways:
            self.routes.update(gateway.control_routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        handler = self.routes.get((scope["method"], scope["path"]))
        if handler is None:
            known = any(path == scope["path"] for _, path in self.routes)
            status = 405 if known else 404
            await respond_json(send, status, {"error": f"{scope['method']} {scope['path']} is not a route"})
            return
        try:
            raw = await read_body(receive)
        except BodyTooLarge:
            await respond_json(send, 413, {"error": "body too large"})
            return
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            await respond_json(send, 400, {"error": "the body is not JSON"})
            return
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        status, answer = await handler(query, body)
        await respond_json(send, status, answer)

    async def stats(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, self.state.stats_dict()

    async def deliveries(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        platform = query.get("platform") or None
        if platform is not None and platform not in PLATFORMS:
            return 400, {"error": f"platform: one of {', '.join(PLATFORMS)}"}
        found = list(self.state.find(platform, query.get("token") or None))
        limit = query.get("limit")
        if limit:
            if not limit.isdigit():
                return 400, {"error": "limit: a non-negative integer"}
            found = found[len(found) - int(limit) :] if int(limit) else []
        return 200, {"deliveries": found}

    async def get_faults(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {platform: plan.as_dict() for platform, plan in self.state.faults.items()}

    async def set_faults(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"error": "the body must be an object"}
        platform = body.get("platform")
        gateway = self.gateways.get(platform)  # type: ignore[arg-type]
        if gateway is None:
            return 400, {"error": f"platform: one of {', '.join(self.gateways)} (simulated so far)"}
        try:
            plan = FaultPlan.parse(body, gateway.errors)
        except FaultConfigError as error:
            return 400, {"error": str(error)}
        if set(body) == {"platform"}:
            self.state.faults.pop(platform, None)
            return 200, {"platform": platform, "faults": None}
        self.state.faults[platform] = plan
        return 200, {"platform": platform, "faults": plan.as_dict()}

    async def reset(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        keep_tokens = isinstance(body, dict) and bool(body.get("keep_tokens"))
        self.state.reset(keep_tokens=keep_tokens)
        return 200, {"reset": True, "kept_tokens": keep_tokens}
