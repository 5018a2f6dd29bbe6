"""Turning a template and a context into an HTML response, in the reader's language.

One Jinja environment per locale, with the gettext catalogue installed (new-style gettext, so `_()` results
are escaped like any other value). Autoescape is on for every template: data from the store is never markup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from juanie import __version__
from juanie.web import format as fmt
from juanie.web import i18n, svg
from juanie.web.session import Viewer

TEMPLATES_DIR = Path(__file__).parent / "templates"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _from_unix(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(float(ts), UTC) if ts else None


@cache
def environment(locale: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["tone"] = fmt.tone
    env.filters["short_sha"] = fmt.short_sha
    env.filters["duration"] = fmt.duration
    env.filters["event_summary"] = fmt.summarize_event_data
    env.filters["ago"] = lambda when: fmt.relative_time(when, datetime.now(UTC), locale)
    env.filters["abstime"] = lambda when: fmt.absolute_time(when, locale)
    env.filters["timestamp_ago"] = lambda ts: fmt.relative_time(_from_unix(ts), datetime.now(UTC), locale)
    env.filters["timestamp_abs"] = lambda ts: fmt.absolute_time(_from_unix(ts), locale)
    env.globals["sparkline"] = lambda values, **kw: Markup(svg.sparkline(values, **kw))
    env.globals["line_chart"] = lambda series, **kw: Markup(svg.line_chart(series, **kw))
    env.globals["tones"] = fmt.TONES
    env.globals["locale"] = locale
    env.globals["html_lang"] = i18n.html_lang(locale)
    env.globals["languages"] = i18n.LANGUAGE_NAMES
    env.globals["version"] = __version__
    return env


def request_locale(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"), request.cookies.get(i18n.LANG_COOKIE))


def render_html(locale: str, template: str, context: dict[str, Any]) -> str:
    """Pure rendering (no request): what the pages and the SSE fragments both use."""
    return environment(locale).get_template(template).render(**context)


def page(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A full page. Every page gets the viewer, the current path (for the nav and the language switch)."""
    locale = request_locale(request)
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = render_html(
        locale,
        template,
        {"viewer": viewer, "path": path, "section": context.pop("section", "")} | context,
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Content-Language": i18n.html_lang(locale),
            "Vary": "Cookie, Accept-Language",
            "Cache-Control": "no-store",
            # Only this server: scripts, styles, images, fonts, SSE and fetch stay on the origin.
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
