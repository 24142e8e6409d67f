"""Scope patterns of confidential clients and the scope check of every operation (§2.4-2.7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

APPLICATION_SCOPE_PREFIX = "push.application."
ANY_APPLICATION = "push.application.*"
MOBILE_CLIENT = "push.mobileclient"


@lru_cache(maxsize=1024)
def _pattern(allowed: str) -> re.Pattern:
    # ``*`` matches any run of characters, anywhere and more than once; everything else is literal.
    return re.compile(".*".join(re.escape(part) for part in allowed.split("*")))


def scope_allowed(requested: str, allowed_patterns: list[str]) -> bool:
    """Whether one requested scope element matches one of a client's ``allowedScope`` patterns."""
    if "*" in requested and requested != ANY_APPLICATION:
        return False  # only the literal push.application.* may carry a wildcard
    return any(_pattern(pattern).fullmatch(requested) for pattern in allowed_patterns)


@dataclass(frozen=True)
class Requirement:
    """What one operation needs: its canonical scope, accepted aliases, and the app scope."""

    scope: str
    aliases: tuple[str, ...] = ()
    mobile_client: bool = False  # push.mobileclient (+app) also satisfies it (§2.7)

    def canonical(self, application_id: str | None) -> str:
        app_scope = APPLICATION_SCOPE_PREFIX + application_id if application_id else ANY_APPLICATION
        return f"{self.scope} {app_scope}"

    def satisfied_by(self, granted: set[str], application_id: str | None) -> bool:
        if application_id is None:
            has_app = ANY_APPLICATION in granted
        else:
            has_app = ANY_APPLICATION in granted or APPLICATION_SCOPE_PREFIX + application_id in granted
        if not has_app:
            return False
        operation = {self.scope, *self.aliases}
        if self.mobile_client:
            operation.add(MOBILE_CLIENT)
        return bool(operation & granted)
