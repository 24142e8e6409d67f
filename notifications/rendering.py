"""Per-recipient text: the recipient's language or English, then ``{{ tag }}`` substitution."""

from __future__ import annotations

import re

# Liquid-style, as OneSignal documents: {{ first_name }} or {{ first_name | default: "friend" }}
_TAG = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*(?:\|\s*default:\s*(?:\"([^\"]*)\"|'([^']*)'))?\s*\}\}")


def pick_language(texts: dict[str, str] | None, language: str | None) -> str | None:
    if not texts:
        return None
    if language and language in texts:
        return texts[language]
    if language and "-" in language and language.split("-")[0] in texts:
        return texts[language.split("-")[0]]
    return texts.get("en")


def personalise(text: str | None, tags: dict[str, str]) -> str | None:
    if not text or "{{" not in text:
        return text

    def substitute(match: re.Match) -> str:
        value = tags.get(match[1])
        if value not in (None, ""):
            return str(value)
        return match[2] if match[2] is not None else (match[3] or "")

    return _TAG.sub(substitute, text)


def render_text(texts: dict[str, str] | None, language: str | None, tags: dict[str, str]) -> str | None:
    return personalise(pick_language(texts, language), tags)
