"""Languages: which one a request gets, and the message catalogues behind `_()`.

Catalogues are gettext `.po` files under `locales/<locale>/LC_MESSAGES/messages.po`. They are compiled to
the binary `.mo` form in memory the first time a locale is used, so a fresh checkout needs no build step and
a stale `.mo` file can never shadow an edited `.po`.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = "en"
SUPPORTED: tuple[str, ...] = ("en", "zh_CN")
LANG_COOKIE = "juanie_lang"
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}


class CatalogueError(RuntimeError):
    """A `.po` file that cannot be read: a packaging bug, reported with the file it concerns."""


def normalize(tag: str) -> str | None:
    """Map a language tag from a header or a cookie ("zh-CN", "zh_Hans", "en-GB") to a supported locale."""
    cleaned = tag.strip().replace("-", "_")
    if not cleaned:
        return None
    lowered = cleaned.lower()
    for supported in SUPPORTED:
        if lowered == supported.lower():
            return supported
    primary = lowered.split("_", 1)[0]
    if primary == "zh":
        # Traditional-script variants are not offered; Simplified is closer than English for them.
        return "zh_CN"
    if primary == "en":
        return "en"
    return None


def parse_accept_language(header: str) -> list[tuple[str, float]]:
    """The language ranges of an `Accept-Language` header with their weights, best first (ties keep order)."""
    ranges: list[tuple[str, float, int]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag.strip():
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    weight = max(0.0, min(1.0, float(value)))
                except ValueError:
                    weight = 0.0
        ranges.append((tag.strip(), weight, position))
    ranges.sort(key=lambda item: (-item[1], item[2]))
    return [(tag, weight) for tag, weight, _ in ranges if weight > 0]


def negotiate(accept_language: str | None, cookie: str | None) -> str:
    """The locale for a request: an explicit choice (the cookie) wins over the browser's preferences."""
    if cookie:
        chosen = normalize(cookie)
        if chosen:
            return chosen
    for tag, _weight in parse_accept_language(accept_language or ""):
        if tag == "*":
            break
        found = normalize(tag)
        if found:
            return found
    return DEFAULT_LOCALE


def compile_po(po_text: bytes, locale: str) -> bytes:
    """Compile the text of a `.po` file to `.mo` bytes (pure: no files touched)."""
    catalog = read_po(io.BytesIO(po_text), locale=locale)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue for `locale`; English is the source language and needs none."""
    if locale not in SUPPORTED:
        raise ValueError(f"unsupported locale {locale!r}; expected one of {', '.join(SUPPORTED)}")
    if locale == DEFAULT_LOCALE:
        return gettext.NullTranslations()
    path = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    try:
        mo = compile_po(path.read_bytes(), locale)
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"cannot load the {locale} catalogue {path}: {exc}") from exc
    return gettext.GNUTranslations(io.BytesIO(mo))


def babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


def html_lang(locale: str) -> str:
    """The BCP 47 tag for `<html lang>`."""
    return locale.replace("_", "-")
