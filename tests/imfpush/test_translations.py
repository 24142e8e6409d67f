"""Every /imfpush error message ships in each catalogue, and the compiled .mo matches the .po."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.functional import Promise

import imfpush

LOCALE = Path(imfpush.__file__).parent / "locale"
ENTRY = re.compile(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', re.MULTILINE)


def _entries(language: str) -> dict[str, str]:
    text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text()

    def joined(block: str) -> str:
        return "".join(ast.literal_eval(line) for line in block.strip().splitlines())

    return {joined(m[1]): joined(m[2]) for m in ENTRY.finditer(text) if joined(m[1])}


@pytest.mark.parametrize("language", ["de", "es"])
def test_every_message_is_translated_and_compiled(language):
    entries = _entries(language)
    assert len(entries) > 40
    assert [msgid for msgid, msgstr in entries.items() if not msgstr] == []
    with open(LOCALE / language / "LC_MESSAGES" / "django.mo", "rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    assert {msgid: catalog.gettext(msgid) for msgid in entries} == entries


def test_messages_in_the_code_are_in_the_catalogues():
    from imfpush import errors

    with translation.override("en-us"):
        messages = [str(value) for value in vars(errors).values() if isinstance(value, Promise)]
    assert len(messages) > 20
    assert set(messages) <= set(_entries("de")) and set(messages) <= set(_entries("es"))
