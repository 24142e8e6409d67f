"""Access tokens issued by the simulators' client-credentials endpoints (Huawei, ADM).

A token belongs to the client id that asked for it and lives ``lifetime`` seconds. ``expire_all``
ages every issued token at once, so a test can make the gateway answer "token expired" to a
client that still holds a cached token, as the real services do after an hour.
"""

from __future__ import annotations

import enum
import secrets
import time


class TokenState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class ClientTokens:
    def __init__(self, prefix: str, lifetime: int = 3600) -> None:
        self.prefix = prefix
        self.lifetime = lifetime
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry)
        self.issued = 0  # since the last reset
        self.clients: dict[str, str] = {}  # registered client id -> secret

    def issue(self, client_id: str) -> str:
        token = self.prefix + secrets.token_urlsafe(48)
        self._tokens[token] = (client_id, time.time() + self.lifetime)
        self.issued += 1
        return token

    def check(self, token: str, client_id: str | None = None) -> TokenState:
        """Whether ``token`` is valid (for ``client_id`` when given), expired, or unknown."""
        issued = self._tokens.get(token)
        if issued is None or (client_id is not None and issued[0] != client_id):
            return TokenState.UNKNOWN
        return TokenState.VALID if issued[1] > time.time() else TokenState.EXPIRED

    def secret_matches(self, client_id: str, secret: str) -> bool:
        """A secret is checked only for registered client ids; any other client is accepted."""
        expected = self.clients.get(client_id)
        return expected is None or secrets.compare_digest(expected.encode(), secret.encode())

    def expire_all(self) -> int:
        now = time.time()
        live = [token for token, (_, expiry) in self._tokens.items() if expiry > now]
        for token in live:
            client_id, _ = self._tokens[token]
            self._tokens[token] = (client_id, now - 1)
        return len(live)

    def counts(self) -> dict[str, int]:
        now = time.time()
        return {"issued": self.issued, "active": sum(1 for _, e in self._tokens.values() if e > now)}

    def reset(self, keep_tokens: bool) -> None:
        """Forget issued tokens unless ``keep_tokens``; registered clients are kept."""
        self.issued = 0
        if not keep_tokens:
            self._tokens.clear()


def bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
