"""The message catalogue's contents: every string the UI marks for translation, and which ones a locale lacks.

Used by the tests (a string without a translation fails the build) and when refreshing the `.po` files.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB_DIR = Path(__file__).parent
METHOD_MAP = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS_MAP = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}

MsgId = str | tuple[str, ...]


def extract_messages(root: Path = WEB_DIR) -> list[MsgId]:
    """The msgids in the templates and page modules, in first-seen order (plural forms as a tuple)."""
    seen: list[MsgId] = []
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(root), method_map=METHOD_MAP, options_map=OPTIONS_MAP
    ):
        if message not in seen:
            seen.append(message)
    return seen


def missing_translations(po_path: Path, messages: list[MsgId]) -> list[MsgId]:
    """The messages with no (or an empty, or a fuzzy) translation in the catalogue at `po_path`."""
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    missing: list[MsgId] = []
    for message in messages:
        key = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(key)
        strings = entry.string if entry is not None else ""
        translated = all(strings) if isinstance(strings, tuple) else bool(strings)
        if entry is None or entry.fuzzy or not translated:
            missing.append(message)
    return missing
