"""The main UI journeys in real headless Chromium against a real Juanie server process.

Each journey asserts on what a person would see, saves a screenshot under tests/e2e/screenshots/, and
(through the `new_page` fixture) that the browser never requested anything from another host.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.e2e.ui_helpers import screenshot

expect = pytest.importorskip("playwright.sync_api").expect
LIVE_MS = 20_000


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_login_with_password_form_redirects_back_and_rejects_a_wrong_password(server, new_page) -> None:
    user = _name("alice")
    server.create_user(user, "correct horse battery")
    page, log = new_page()

    page.goto(server.url + "/events")
    expect(page).to_have_url(re.compile(r"/login\?next=/events$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_label("Username").fill(user)
    page.get_by_role("textbox", name="Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("wrong username or password")

    page.get_by_role("textbox", name="Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(server.url + "/events")
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()

    page.goto(server.url + "/")
    # A new user is a member of nothing: the home page explains what to do next.
    expect(page.get_by_text("No projects yet")).to_be_visible()
    expect(page.get_by_role("link", name="Create your first project")).to_be_visible()
    screenshot(page, "01-home-empty")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    assert all(u.startswith(server.url) for u in log.urls)


def test_pasted_api_token_becomes_a_browser_session(server, new_page) -> None:
    page, _log = new_page()
    page.goto(server.url + "/login")
    page.get_by_role("tab", name="API token").click()
    page.get_by_role("textbox", name="API token").fill("jn_this_is_not_a_token")
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.locator("#login-token .form-error")).to_be_visible()

    page.get_by_role("textbox", name="API token").fill(server.admin_token)
    page.get_by_role("button", name="Sign in with token").click()
    expect(page).to_have_url(server.url + "/")
    expect(page.locator(".who .badge")).to_have_text("admin")
    # The browser holds a session cookie, not the pasted token.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["juanie_session"] and cookies["juanie_session"] != server.admin_token
    assert cookies["juanie_csrf"]
    screenshot(page, "02-token-login")


def test_create_a_project_through_the_ui_and_see_its_three_environments(server, new_page) -> None:
    user, project = _name("owner"), _name("shop")
    server.create_user(user, "owner-password-1")
    page, _log = new_page(server.session_cookies(user, "owner-password-1"))

    page.goto(server.url + "/")
    page.get_by_role("link", name="Create your first project").click()
    expect(page).to_have_url(server.url + "/projects/new")
    page.get_by_label("Name").fill("Bad Name")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_contain_text("name")

    page.get_by_label("Name").fill(project)
    page.get_by_label("Description").fill("The shop, end to end")
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(f"{server.url}/projects/{project}")
    expect(page.get_by_role("heading", name=project)).to_be_visible()
    board = page.locator(".board")
    for env in ("dev", "staging", "prod"):
        expect(board.get_by_role("heading", name=env, exact=True)).to_be_visible()
    expect(board.get_by_text("No deployments yet")).to_have_count(3)
    expect(board.get_by_text(f"{project}-prod")).to_be_visible()
    # The creator owns the project: the owner-only controls are there.
    expect(page.get_by_text("Edit settings")).to_have_count(3)
    expect(page.locator(".events").get_by_text("project.created")).to_be_visible()
    screenshot(page, "03-project-board")

    page.goto(server.url + "/")
    card = page.locator(".project-card", has_text=project)
    expect(card.locator(".env-chip")).to_have_count(3)


def test_a_viewer_does_not_get_controls_the_api_would_refuse(server, new_page) -> None:
    owner, viewer, project = _name("own"), _name("view"), _name("svc")
    server.create_user(owner, "owner-password-1")
    server.create_user(viewer, "viewer-password-1")
    with server.api() as api:
        assert api.post("/api/projects", json={"name": project}).status_code == 201
        response = api.put(f"/api/projects/{project}/members", json={"user": viewer, "role": "viewer"})
        assert response.status_code == 200, response.text
    page, _log = new_page(server.session_cookies(viewer, "viewer-password-1"))
    page.goto(f"{server.url}/projects/{project}")
    expect(page.get_by_role("heading", name="dev", exact=True)).to_be_visible()
    expect(page.get_by_text("Edit settings")).to_have_count(0)
    expect(page.get_by_role("button", name="Suspend")).to_have_count(0)
    page.goto(f"{server.url}/projects/{project}/settings")
    expect(page.get_by_text("Only owners can change members.")).to_be_visible()


def test_timeline_shows_a_new_event_live_without_reloading(server, new_page, admin_cookies) -> None:
    page, _log = new_page(admin_cookies())
    page.goto(server.url + "/events")
    expect(page.locator("[data-live-status]")).to_have_text("Live", timeout=LIVE_MS)
    page.evaluate("window.__sameDocument = true")

    project = _name("live")
    with server.api() as api:
        assert api.post("/api/projects", json={"name": project}).status_code == 201

    row = page.locator("#timeline .event", has_text=f"project/{project}").filter(has_text="project.created")
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row.locator(".event-kind")).to_have_text("project.created")
    assert page.evaluate("window.__sameDocument") is True  # arrived over SSE, not by a reload
    screenshot(page, "04-events-live")

    page.goto(server.url + "/events?kind=environment.created&project=" + project)
    expect(page.locator("#timeline .event")).to_have_count(3)


def test_create_a_token_shown_once_then_revoke_it(server, new_page) -> None:
    user = _name("dev")
    server.create_user(user, "dev-password-123")
    page, _log = new_page(server.session_cookies(user, "dev-password-123"))
    page.goto(server.url + "/settings/tokens")
    expect(page.get_by_text("You have no API tokens")).to_be_visible()

    page.get_by_label("Name").fill("ci-e2e")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("#token-value")
    expect(shown).to_be_visible()
    token = shown.inner_text().strip()
    assert len(token) > 20
    me = httpx.get(server.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert me.status_code == 200 and me.json()["username"] == user
    screenshot(page, "05-token-created")

    page.get_by_role("link", name="Done").click()
    row = page.locator("tr[data-token-name='ci-e2e']")
    expect(row).to_contain_text("active")
    assert token not in page.content()  # shown once: never again

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    gone = httpx.get(server.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert gone.status_code == 401


def test_switch_to_chinese_and_back(server, new_page, admin_cookies) -> None:
    page, _log = new_page(admin_cookies())
    page.goto(server.url + "/")
    page.get_by_role("link", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("项目")
    expect(page.get_by_role("link", name="事件")).to_be_visible()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    screenshot(page, "06-home-zh")
    page.goto(server.url + "/events")
    expect(page.locator("h1")).to_have_text("事件")
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Events")


def test_browser_language_picks_chinese_on_the_login_page(server, new_page) -> None:
    page, _log = new_page(locale="zh-CN")
    page.goto(server.url + "/login")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    expect(page.get_by_role("tab", name="API 令牌")).to_be_visible()


def test_keyboard_skip_link_and_visible_focus(server, new_page, admin_cookies) -> None:
    page, _log = new_page(admin_cookies())
    page.goto(server.url + "/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0, "the focused skip link must be on screen"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    page.goto(server.url + "/")  # from the top again: skip link, brand, then the nav links
    focused = ""
    for _ in range(6):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        if focused == "Events":
            break
    assert focused == "Events"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), f"focused link has no outline ({outline})"
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/events")
    screenshot(page, "07-keyboard-focus")


def test_pages_fit_a_laptop_and_a_phone_without_sideways_scrolling(server, new_page, admin_cookies) -> None:
    project = _name("phone")
    with server.api() as api:
        assert api.post("/api/projects", json={"name": project, "description": "fits on a phone"}).status_code == 201
    for width, height in ((1366, 768), (390, 844)):
        page, _log = new_page(admin_cookies(), width=width, height=height)
        for path in (
            "/",
            f"/projects/{project}",
            f"/projects/{project}/settings",
            "/events",
            "/settings/tokens",
        ):
            page.goto(server.url + path)
            overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} scrolls sideways by {overflow}px at {width}px wide"
    page.goto(f"{server.url}/projects/{project}")
    expect(page.get_by_role("heading", name="prod", exact=True)).to_be_visible()
    screenshot(page, "08-project-phone")
