"""Languages: negotiation from the browser and the switch, the Chinese catalogue, and that it is complete."""

from __future__ import annotations

import pytest

from juanie.web import catalogue, i18n
from juanie.web.render import render_html
from juanie.web.session import Viewer


@pytest.mark.parametrize(
    ("header", "cookie", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh_CN"),
        ("en-GB,en;q=0.9", None, "en"),
        ("fr-FR,zh-TW;q=0.5", None, "zh_CN"),  # nearest offered language
        ("de, fr;q=0.8", None, "en"),  # nothing we offer: the default
        ("en;q=0.2, zh;q=0.9", None, "zh_CN"),  # weights, not order, decide
        ("zh;q=0, en", None, "en"),  # q=0 means "not this"
        ("zh-CN", "en", "en"),  # an explicit switch wins over the browser
        ("en", "zh-cn", "zh_CN"),
        ("en", "klingon", "en"),  # a bad cookie is ignored
        (None, None, "en"),
        ("garbage;;q=abc,,", None, "en"),
    ],
)
def test_negotiate(header: str | None, cookie: str | None, expected: str) -> None:
    assert i18n.negotiate(header, cookie) == expected


def test_parse_accept_language_orders_by_weight_keeping_ties_in_order() -> None:
    assert i18n.parse_accept_language("a;q=0.5, b, c;q=0.5, d;q=1") == [
        ("b", 1.0),
        ("d", 1.0),
        ("a", 0.5),
        ("c", 0.5),
    ]


def test_chinese_catalogue_compiles_and_translates_with_plurals() -> None:
    zh = i18n.translations("zh_CN")
    assert zh.gettext("Projects") == "项目"
    assert zh.ngettext("%(num)d project", "%(num)d projects", 5) % {"num": 5} == "5 个项目"
    assert i18n.translations("en").gettext("Projects") == "Projects"
    with pytest.raises(ValueError, match="unsupported locale"):
        i18n.translations("fr")


def test_compile_po_reports_a_broken_file_clearly() -> None:
    mo = i18n.compile_po(b'msgid "Hi"\nmsgstr "Ni hao"\n', "zh_CN")
    assert mo.startswith(b"\xde\x12\x04\x95") or mo.startswith(b"\x95\x04\x12\xde")  # the gettext magic


def test_every_ui_string_has_a_chinese_translation() -> None:
    messages = catalogue.extract_messages()
    assert len(messages) > 150  # the extractor really read the templates
    po = i18n.LOCALES_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
    assert catalogue.missing_translations(po, messages) == []


def test_ui_strings_carry_no_markup_characters() -> None:
    # New-style gettext marks translations as safe markup, so a literal "<token>" would become a tag.
    flat = [
        m for message in catalogue.extract_messages() for m in (message if isinstance(message, tuple) else (message,))
    ]
    assert [m for m in flat if "<" in m or ">" in m] == []


def test_templates_render_in_the_chosen_language_with_escaping() -> None:
    row_context = {
        "event": type(
            "E",
            (),
            {
                "id": 1,
                "kind": "project.created",
                "subject": "project/<script>",
                "data": {},
                "actor": "bob",
                "project": None,
                "environment": None,
                "at": None,
            },
        )()
    }
    html = render_html("zh_CN", "_event_row.html", row_context)
    assert "project/&lt;script&gt;" in html and "<script>" not in html
    page = render_html(
        "zh_CN",
        "settings_notifications.html",
        {"viewer": Viewer(1, "ann", "Ann", False, 1), "path": "/", "section": "", "csrf": "", "tab": ""},
    )
    assert "通知渠道" in page and 'lang="zh-CN"' in page
