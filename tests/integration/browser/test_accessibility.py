"""Every main page in a real browser, checked by axe-core (WCAG 2.1 A/AA and best
practice: no serious or critical violation), on a desk and on a phone (nothing wider than
the screen), once empty (each list says so rather than showing an empty table) and once
with data; and by keyboard: the first Tab reaches the skip link, which moves focus to the
main content, and every focusable element shows where the focus is."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Page

from ldis.domain.roles import Role
from tests.integration.browser.conftest import Browsers, Visitor, axe_violations, describe
from tests.integration.cases import DECISION, GRADE, near_miss
from tests.integration.conftest import People, wait_for
from tests.integration.test_alert_lifecycle import BODY, Api
from tests.integration.test_areas_api import box
from tests.integration.webpages import AREA

pytestmark = pytest.mark.integration

# The pages anyone may open, and those of signed-in staff (ids filled in once seeded).
PUBLIC_PAGES = ["/login", "/login/forgot", "/public-alerts", "/report"]
STAFF_PAGES = [
    "/",
    "/reports",
    "/reports/new",
    "/reports/new/drug_checking",
    "/reports/new/near_miss",
    "/reports/new/callout",
    "/signals",
    "/alerts",
    "/alerts/new",
    "/dashboard",
    "/dashboard/report",
    "/dashboard/map",
    "/audience",
    "/areas",
    "/areas/new",
    f"/areas/{AREA}",
    "/services",
    "/services/new",
    "/service-types",
    "/hygiene",
    "/recipients/import",
    "/outbox",
    "/account",
    "/account/tokens",
    "/panel/public-texts",
]
SEEDED_PAGES = [
    "/reports/{report}",
    "/signals/{signal}",
    "/panel/signals/{signal}",
    "/panel/reports/{report}",
    "/alerts/{alert}",
    "/alerts/{alert}/history",
    "/alerts/{alert}/deliveries",
    "/alerts/{alert}/revise",
    "/services/{service}",
    "/public-alerts/{alert}",
]


def check(visitor: Visitor, path: str, axe_source: str) -> list[str]:
    """Problems with one page: axe's serious ones, and an empty table with no words."""
    page = visitor.go(path)
    problems = []
    violations = axe_violations(page, axe_source)
    if violations:
        problems.append(f"{path}:\n{describe(violations)}")
    empty_tables = page.evaluate(
        """() => [...document.querySelectorAll('main table')]
              .filter(t => t.tBodies.length && [...t.tBodies].every(b => b.rows.length === 0))
              .length"""
    )
    if empty_tables:
        problems.append(f"{path}: {empty_tables} table(s) with a heading row and no rows")
    return problems


def too_wide(page: Page) -> int:
    """How many CSS pixels the page is wider than the phone's screen."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


def seed(client: FlaskClient, people: People) -> dict[str, int]:
    api = Api(client, people)
    admin = people.headers("admin", Role.admin)
    service = api.ok(
        "POST",
        "/services",
        admin,
        {"name": "Selby NSP", "type": "needle_syringe_programme", "areas": [AREA]},
    )
    api.ok(
        "POST",
        f"/services/{service['id']}/contacts",
        admin,
        {
            "name": "Selby duty",
            "email": "selby@example.org",
            "channels": ["email"],
            "verified": True,
        },
    )
    api.ok("PUT", f"/areas/{AREA}/boundary", admin, box(-1.3, 53.7, -0.9, 53.87))
    panel = {n: people.headers(n, Role.panel) for n in ("drafter", "p2", "p3")}
    api.ok(
        "POST",
        "/reports",
        panel["drafter"],
        near_miss(AREA) | {"location": {"lat": 53.78, "lon": -1.07}},
    )
    report = api.ok(
        "POST",
        "/reports",
        panel["drafter"],
        {
            "kind": "drug_checking",
            "area": AREA,
            "sample_obtained_on": "2026-11-20",
            "sold_as": "oxycodone",
            "form": "tablet",
            "results": [{"substance": "metonitazene", "method": "lc-ms"}],
            "source": {"type": "drug_checking_service", "name": "Lab"},
        },
    )
    signal = next(s["id"] for s in report["signals"] if s["kind"] == "red_list")
    api.ok("POST", f"/signals/{signal}/grades", panel["p2"], GRADE)
    api.ok("POST", f"/signals/{signal}/decision", panel["p2"], DECISION)
    alert = api.ok(
        "POST", "/alerts", panel["drafter"], {**BODY, "signal_id": signal, "level": "public"}
    )
    api.ok("POST", f"/alerts/{alert['id']}/submit", panel["drafter"])
    for name in ("p2", "p3"):
        api.ok("POST", f"/alerts/{alert['id']}/approve", panel[name])
    wait_for(lambda: api.ok("GET", f"/alerts/{alert['id']}", admin)["deliveries"]["sent"] == 1)
    return {
        "report": report["id"],
        "signal": signal,
        "alert": alert["id"],
        "service": service["id"],
    }


def test_main_pages_pass_axe_empty_and_full_on_desk_and_phone(
    browsers: Browsers,
    client: FlaskClient,
    people: People,
    worker: subprocess.Popen[str],
    axe_source: str,
) -> None:
    anyone = browsers.window("anyone")
    staff = browsers.person("everyone", Role.panel, Role.admin)
    problems: list[str] = []

    for path in PUBLIC_PAGES:
        problems += check(anyone, path, axe_source)
    for path in STAFF_PAGES:
        problems += check(staff, path, axe_source)
    staff.shot("empty dashboard")

    ids = seed(client, people)
    for path in STAFF_PAGES + [p.format(**ids) for p in SEEDED_PAGES]:
        problems += check(staff, path, axe_source)
    # A form sent empty: its error summary and the errors beside the fields.
    page = staff.go("/reports/new/near_miss")
    page.get_by_role("button", name="Send report").click()
    page.get_by_role("alert").wait_for()
    violations = axe_violations(page, axe_source)
    if violations:
        problems.append(f"near miss form with errors:\n{describe(violations)}")
    staff.shot("form errors")
    staff.go("/dashboard/map?weeks=12")
    assert staff.page.locator("figure svg circle").count() >= 1
    staff.shot("map")
    assert not problems, "\n".join(problems)

    phone = browsers.person("phone", Role.panel, Role.admin)
    phone.page.set_viewport_size({"width": 360, "height": 740})
    wide: dict[str, int] = {}
    for visitor, paths in (
        (phone, STAFF_PAGES + [p.format(**ids) for p in SEEDED_PAGES]),
        (browsers.window("public phone", phone=True), PUBLIC_PAGES),
    ):
        for path in paths:
            visitor.go(path)
            if (over := too_wide(visitor.page)) > 0:
                wide[path] = over
    phone.go("/dashboard")
    phone.shot("dashboard on a phone")
    assert not wide, f"pages wider than a 360 px phone (px over): {wide}"


def test_keyboard_skip_link_and_visible_focus(browsers: Browsers, people: People) -> None:
    staff = browsers.person("keys", Role.panel)
    page = staff.go("/alerts/new")
    page.keyboard.press("Tab")
    focused: dict[str, Any] = page.evaluate(
        "() => ({text: document.activeElement.textContent, href: document.activeElement.getAttribute('href')})"
    )
    assert focused == {"text": "Skip to main content", "href": "#main"}, focused
    staff.shot("skip link focused")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    inside_main = page.evaluate("() => !!document.activeElement.closest('main')")
    assert inside_main, "after the skip link, Tab should move into the main content"
    # Each of the next 25 stops shows a focus indicator (outline or box-shadow).
    unmarked = []
    for _ in range(25):
        style: dict[str, str] = page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
                       return {tag: document.activeElement.tagName, id: document.activeElement.id,
                               outline: s.outlineStyle, shadow: s.boxShadow}; }"""
        )
        if style["outline"] == "none" and style["shadow"] == "none":
            unmarked.append(f"{style['tag']}#{style['id']}")
        page.keyboard.press("Tab")
    assert not unmarked, f"focused without a visible indicator: {unmarked}"
