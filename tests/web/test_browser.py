"""The web UI in a real browser: Debian's Chromium driven by Playwright against the real app.

The app runs as deployed (uvicorn, ``b12plan.app:app_from_env``) in a subprocess on a free
loopback port, on a copy of the seeded demo database. Each main page is saved to
``docs/screenshots/``. Without
``/usr/bin/chromium`` these tests skip with a loud reason (run ``scripts/ensure-chromium.sh``);
in CI (``CI`` set) they fail instead, so a missing browser can never pass silently.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from b12plan.examples import example_cases
from b12plan.service import KINDS, Principal
from b12plan.service.demo import shift_dates
from b12plan.service.schemas import AdverseEventIn, NewUser
from tests.web.conftest import (
    ADMIN,
    CLINICIAN,
    OVERDUE_ID,
    PATIENT,
    PATIENT_ID,
    TODAY,
    copy_db,
    services_for,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("B12PLAN_CHROMIUM", "/usr/bin/chromium"))  # Debian's package
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _missing(config: pytest.Config, reason: str) -> None:
    """Fail in CI; elsewhere skip, and say so where nobody can miss it."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    banner = "!" * 78
    message = f"\n{banner}\nSKIPPING THE BROWSER TESTS: {reason}\n{banner}\n"
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():  # print past pytest's output capture
            sys.stderr.write(message)
    else:
        sys.stderr.write(message)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def browser(pytestconfig: pytest.Config) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _missing(pytestconfig, f"{CHROMIUM} is missing; install it with scripts/ensure-chromium.sh")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def served_app(env: dict[str, str]) -> Iterator[str]:
    """The app started as it is deployed (``uvicorn --factory b12plan.app:app_from_env``) in a
    subprocess on a free loopback port with ``env``; its URL once ``/login`` answers."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "b12plan.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the app exited with code {server.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not answer on /login within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


NEURO_ID = "browser-neuro"  # a second patient in neurological loading, for the decision test
LOCUM = ("dr.locum", "locum sessions at the riverside")  # a clinician the admin test disables


@pytest.fixture(scope="module")
def browser_db(seeded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seeded demo database, plus a patient of its own for the decision test
    (the demo patient user's record is the patient tests' to change) and a clinician of its own
    for the admin's disable test (the demo clinician's session is the other tests')."""
    database = copy_db(seeded_db, tmp_path_factory.mktemp("browser"))
    example = next(e for e in example_cases() if e.name.startswith("01-"))
    document = json.loads(example.text)
    document = shift_dates(document, (TODAY - date.fromisoformat(document["as_of"])).days)
    services = services_for(database)
    try:
        services.records.import_case(
            Principal.system("tests"),
            document,
            clinic_id="demo-clinic",
            display_name="Test Patient Neuro",
            patient_id=NEURO_ID,
        )
        services.auth.add_user(
            Principal.system("tests"),
            NewUser(
                username=LOCUM[0],
                password=LOCUM[1],
                role="clinician",
                clinic_id="demo-clinic",
                display_name="Locum clinician",
            ),
        )
    finally:
        services.db.dispose()
    return database


@pytest.fixture(scope="module")
def base_url(browser_db: Path) -> Iterator[str]:
    """The real app, started the way it is deployed (``uvicorn --factory
    b12plan.app:app_from_env``) in a subprocess on a free loopback port, with "today" pinned
    and a copy of the seeded demo database."""
    database = browser_db
    env = {
        **os.environ,
        "B12PLAN_DATABASE_URL": f"sqlite:///{database}",
        "B12PLAN_TODAY": TODAY.isoformat(),
        "B12PLAN_DEV": "1",  # plain HTTP on loopback, as `make demo` runs it
    }
    with served_app(env) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def new_context(browser: Browser, viewport: ViewportSize = DESKTOP) -> BrowserContext:
    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(20_000)
    return context


def new_page(context: BrowserContext) -> Page:
    """A page that fails its test on any JavaScript error, any Content-Security-Policy
    violation, and any request that leaves the site (issue 13: nothing goes to a third party)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' by ' + (e.sourceFile || 'the page') + ':'"
        " + e.lineNumber + ' ' + JSON.stringify(e.sample)))"
    )
    page.on(
        "console",
        lambda message: (
            errors.append(message.text[:300]) if message.text.startswith("CSP violation") else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            errors.append(f"off-site request: {request.url}")
            if not request.url.startswith(("http://127.0.0.1:", "data:", "blob:", "about:"))
            else None
        ),
    )
    page.on("close", lambda _: _no_errors(errors))
    return page


def _no_errors(errors: list[str]) -> None:
    assert errors == [], f"JavaScript errors: {errors}"


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Page, base_url: str, credentials: tuple[str, str]) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(credentials[0])
    page.get_by_label("Password").fill(credentials[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/{'me' if credentials == PATIENT else 'clinic'}")


@pytest.fixture(scope="module")
def clinician(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    """A browser signed in as the demo clinician (one session, so Plotly is cached once)."""
    context = new_context(browser)
    page = new_page(context)
    page.goto(f"{base_url}/login")
    shot(page, "login")
    sign_in(page, base_url, CLINICIAN)
    page.close()
    yield context
    context.close()


@pytest.fixture(scope="module")
def patient(browser: Browser, base_url: str) -> Iterator[BrowserContext]:
    """A browser signed in as the demo patient."""
    context = new_context(browser)
    page = new_page(context)
    sign_in(page, base_url, PATIENT)
    page.close()
    yield context
    context.close()


def wait_for_chart(page: Page) -> None:
    page.wait_for_selector("#timeline[data-drawn='true']")


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls a screen reader could not name."""
    result: list[str] = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.name || el.id)"""
    )
    return result


def interactive_inside_non_interactive_roles(page: Page) -> list[str]:
    """What axe-core's ``nested-interactive`` rule flags: a focusable or interactive element
    inside one whose role makes its children presentational (an image, a button...), which a
    screen reader then never reaches."""
    result: list[str] = page.evaluate(
        """() => {
          const outer = '[role=img],[role=button],[role=link],[role=checkbox],[role=tab],'
            + '[role=menuitem],[role=option],[role=progressbar],[role=slider],button,a[href]';
          const inner = 'a[href],button,input,select,textarea,[tabindex]:not([tabindex="-1"]),'
            + '[role=button],[role=link],[contenteditable=true]';
          return Array.from(document.querySelectorAll(outer))
            .filter(el => el.querySelector(inner))
            .map(el => el.id || el.getAttribute('role') || el.tagName.toLowerCase());
        }"""
    )
    return result


def overflows_horizontally(page: Page) -> bool:
    result: bool = page.evaluate(
        "() => document.documentElement.scrollWidth > window.innerWidth + 1"
    )
    return result


# --- clinician ------------------------------------------------------------------------------


def test_clinician_finds_an_overdue_patient_and_records_an_injection(
    clinician: BrowserContext, base_url: str
) -> None:
    page = new_page(clinician)
    page.goto(f"{base_url}/clinic")
    overdue = page.locator("section", has=page.locator("#group-overdue"))
    row = overdue.locator(f"tr[data-patient='{OVERDUE_ID}']")
    expect(row).to_be_visible()
    assert unlabelled_controls(page) == []
    shot(page, "clinician-worklist", full_page=True)

    # filtering by a finding code updates the list in place (htmx) and the address bar
    page.locator("#filter-code").select_option("MAINTENANCE_WITHOUT_LOADING")
    expect(page.locator("tr[data-patient]")).to_have_count(1)
    expect(page).to_have_url(
        f"{base_url}/clinic?code=MAINTENANCE_WITHOUT_LOADING&clinic=demo-clinic"
    )
    page.goto(f"{base_url}/clinic")

    row.get_by_role("link").click()
    page.wait_for_url(f"{base_url}/clinic/patients/{OVERDUE_ID}")
    wait_for_chart(page)
    due_before = page.locator("#next-dose-due").inner_text()
    expect(page.locator("#next-dose-state")).to_contain_text("overdue by")
    assert unlabelled_controls(page) == []
    shot(page, "clinician-patient", full_page=True)

    # the lab form's unit list follows the chosen test (htmx)
    page.locator("#lab-title").click()
    page.locator("#lab-code").select_option("mma")
    # wait for the swap itself: B12's list has 3 units too, so a count alone can pass too early
    expect(page.locator("#lab-unit option")).to_have_text(["umol/L", "µmol/L", "nmol/L"])

    page.locator("#injection-title").click()  # open "Record an injection"
    form = page.locator("#injection-form")
    expect(form.get_by_label("Date given")).to_have_value(TODAY.isoformat())
    form.get_by_label("Dose").fill("one")
    form.get_by_role("button", name="Record injection").click()
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.locator("#injection-dose-error")).to_contain_text("enter a number")
    page.locator("#injection").scroll_into_view_if_needed()
    shot(page, "clinician-form-error")

    form = page.locator("#injection-form")
    form.get_by_label("Dose").fill("1")
    form.get_by_label("Injection site").select_option("left upper arm")
    form.get_by_role("button", name="Record injection").click()
    expect(page.get_by_role("status")).to_contain_text("Injection recorded.")
    expect(page.locator("#next-dose-due")).not_to_have_text(due_before)
    expect(page.locator("#next-dose-due")).to_have_text("Due Mon 25 May 2026")
    expect(page.locator("#next-dose-state")).not_to_contain_text("overdue")
    wait_for_chart(page)
    shot(page, "clinician-patient-after-injection")

    page.goto(f"{base_url}/clinic/patients/{OVERDUE_ID}/print")
    page.emulate_media(media="print")
    expect(page.get_by_role("heading", level=1)).to_contain_text("summary")
    shot(page, "clinician-print-summary", full_page=True)
    page.close()


def test_a_decision_entered_in_the_form_ends_neurological_loading(
    clinician: BrowserContext, base_url: str
) -> None:
    page = new_page(clinician)
    page.goto(f"{base_url}/clinic/patients/{NEURO_ID}")
    wait_for_chart(page)
    assert interactive_inside_non_interactive_roles(page) == []
    progress = page.locator("#regimen-progress")
    expect(progress).to_contain_text("loading continues until symptoms stop improving")
    expect(page.locator("#dose-validity-table")).to_contain_text("loading dose")

    page.locator("#decision-title").click()  # the form sits in a closed <details>
    form = page.locator("#decision-form")
    form.get_by_label("Decision", exact=True).select_option("neuro_loading_complete")
    form.get_by_role("button", name="Record decision").click()
    expect(form.locator(".error-summary")).to_contain_text("Enter the reason")  # required
    form.get_by_label("Reason").fill("No further improvement in numbness at two reviews.")
    assert unlabelled_controls(page) == []
    shot(page, "clinician-decision-form")
    form.get_by_role("button", name="Record decision").click()

    expect(page.get_by_role("status")).to_contain_text("Decision recorded.")
    expect(progress).to_contain_text("loading complete")
    expect(page.locator("#decisions")).to_contain_text("No further improvement in numbness")
    page.close()


def test_keyboard_users_can_skip_to_content_and_sign_in(browser: Browser, base_url: str) -> None:
    context = new_context(browser)
    page = new_page(context)
    page.goto(f"{base_url}/login")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None
    assert box["x"] >= 0  # shown on screen when focused
    page.get_by_label("Username").focus()
    page.keyboard.type(CLINICIAN[0])
    page.keyboard.press("Tab")
    page.keyboard.type(CLINICIAN[1])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/clinic")
    context.close()


# --- patient ------------------------------------------------------------------------------------


def chart_symptoms(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(
        """() => document.getElementById('timeline').data
            .filter(t => t.name.startsWith('Symptom'))
            .map(t => ({name: t.name, x: t.x, text: t.text}))"""
    )
    return result


def test_patient_logs_a_symptom_and_sees_it_on_the_chart(
    patient: BrowserContext, base_url: str
) -> None:
    page = new_page(patient)
    page.goto(f"{base_url}/me")
    wait_for_chart(page)
    expect(page.locator("#next-dose-due")).to_contain_text("Due")
    shot(page, "patient-schedule", full_page=True)
    before = chart_symptoms(page)
    assert not any(TODAY.isoformat() in text for t in before for text in t["text"])

    page.get_by_role("link", name="Log an injection, symptoms or a side effect").click()
    page.wait_for_url(f"{base_url}/me/log")
    assert unlabelled_controls(page) == []
    diary = page.locator("#diary-form")
    diary.locator("#diary-fatigue").get_by_text("6", exact=True).click()
    diary.locator("#diary-tingling").get_by_text("3", exact=True).click()
    shot(page, "patient-log", full_page=True)
    diary.get_by_role("button", name="Save my diary").click()
    expect(page.get_by_role("status")).to_contain_text("your diary is saved")

    page.get_by_role("link", name="My schedule").click()
    page.wait_for_url(f"{base_url}/me")
    wait_for_chart(page)
    after = chart_symptoms(page)
    present = next(t for t in after if t["name"] == "Symptom present")
    assert TODAY.isoformat() in present["x"]
    assert f"Tiredness: present (reported {TODAY.isoformat()})" in present["text"]
    page.locator("#timeline").scroll_into_view_if_needed()
    page.locator("#timeline").screenshot(path=str(SCREENSHOTS / "patient-chart-after-diary.png"))
    page.close()


def test_patient_reports_anaphylaxis_and_is_told_to_contact_a_clinician(
    patient: BrowserContext, base_url: str, browser_db: Path
) -> None:
    page = new_page(patient)
    page.goto(f"{base_url}/me/log")
    form = page.locator("#side-effect-form")
    form.get_by_label("What happened?").select_option("anaphylaxis")
    form.get_by_role("button", name="Report side effect").click()
    urgent = page.get_by_role("alert").filter(has_text="Contact a clinician now")
    expect(urgent).to_be_visible()
    expect(urgent).to_be_focused()
    expect(page.locator("#notice-hold")).to_contain_text("Your injections are on hold")
    shot(page, "patient-urgent-side-effect")
    page.goto(f"{base_url}/me")
    expect(page.locator("#notice-hold")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("give it today")
    page.close()
    # The other patient tests read this record: take the reaction back out (entered in error).
    services = services_for(browser_db)
    try:
        system = Principal.system("tests")
        for stored in services.records.list_records(system, PATIENT_ID, KINDS["adverse_events"]):
            if stored.data == AdverseEventIn(code="anaphylaxis", date=TODAY):
                services.records.retract_record(
                    system,
                    PATIENT_ID,
                    KINDS["adverse_events"],
                    stored.id,
                    expected_version=stored.version,
                    reason="browser test: put back as it was",
                )
    finally:
        services.db.dispose()


def test_patient_reads_answers_with_sources(patient: BrowserContext, base_url: str) -> None:
    page = new_page(patient)
    page.goto(f"{base_url}/me/log")
    page.get_by_role("link", name="Questions").first.click()
    page.wait_for_url(f"{base_url}/me/questions")
    question = page.get_by_role("heading", name="Why do I need loading injections first?")
    expect(question).to_be_visible()
    expect(page.locator("#switch-monthly")).to_contain_text("Not yet")
    expect(page.locator("#why-loading .source a").first).to_have_attribute(
        "href", "https://www.nice.org.uk/guidance/ng239"
    )
    shot(page, "patient-questions", full_page=True)
    page.close()


def test_a_patient_cannot_open_another_patients_page(
    patient: BrowserContext, base_url: str
) -> None:
    page = new_page(patient)
    response = page.goto(f"{base_url}/clinic/patients/{OVERDUE_ID}")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.locator("main")).not_to_contain_text("Demo 03")
    page.close()


# --- accounts -----------------------------------------------------------------------------------


def test_an_admin_disables_a_user_and_their_open_session_is_gone(
    browser: Browser, base_url: str
) -> None:
    locum_context = new_context(browser)
    locum = new_page(locum_context)
    sign_in(locum, base_url, LOCUM)
    expect(locum.get_by_role("heading", level=1)).to_contain_text("Worklist")

    admin_context = new_context(browser)
    admin = new_page(admin_context)
    sign_in(admin, base_url, ADMIN)
    admin.get_by_role("link", name="Users").click()
    admin.wait_for_url(f"{base_url}/clinic/users")
    row = admin.locator(f'[id="user-{LOCUM[0]}"]')
    expect(row).to_contain_text("active")
    assert unlabelled_controls(admin) == []
    shot(admin, "admin-users", full_page=True)
    row.get_by_role("link", name=f"Disable {LOCUM[0]}").click()
    admin.wait_for_url(f"{base_url}/clinic/users/{LOCUM[0]}/disable")
    expect(admin.locator("#confirm-consequence")).to_contain_text("signed out everywhere")
    shot(admin, "admin-confirm-disable")
    admin.get_by_role("button", name=f"Disable {LOCUM[0]}").click()
    expect(admin.locator("#users-saved")).to_have_text(f"{LOCUM[0]} is now disabled.")
    expect(row).to_contain_text("disabled")

    locum.reload()  # the same browser, the same cookie: the session ended with the account
    locum.wait_for_url(f"{base_url}/login?next=%2Fclinic")
    expect(locum.get_by_role("heading", level=1)).to_have_text("Sign in")
    locum.get_by_label("Username").fill(LOCUM[0])
    locum.get_by_label("Password").fill(LOCUM[1])
    locum.get_by_role("button", name="Sign in").click()
    expect(locum.locator("main")).to_contain_text("Wrong username or password.")
    for page in (locum, admin):
        page.close()
    locum_context.close()
    admin_context.close()


def test_a_user_changes_their_password_with_labelled_fields_and_an_error_summary(
    patient: BrowserContext, base_url: str
) -> None:
    page = new_page(patient)
    page.goto(f"{base_url}/me")
    page.get_by_role("link", name="Change password").click()
    page.wait_for_url(f"{base_url}/account/password")
    assert unlabelled_controls(page) == []
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("a fine long phrase for me")
    page.get_by_label("New password again").fill("a fine long phrase for me")
    page.get_by_role("button", name="Change password").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Current password: Is not your current password")
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("New password", exact=True)).to_have_value("")  # never echoed
    shot(page, "account-password-error")
    page.close()


# --- phone width --------------------------------------------------------------------------------


def test_pages_fit_a_phone_screen(
    patient: BrowserContext, clinician: BrowserContext, base_url: str
) -> None:
    page = new_page(patient)
    page.set_viewport_size(PHONE)
    page.goto(f"{base_url}/me", wait_until="domcontentloaded")
    assert not overflows_horizontally(page)
    shot(page, "phone-patient-schedule")
    page.goto(f"{base_url}/me/log", wait_until="domcontentloaded")
    assert not overflows_horizontally(page)
    page.close()

    page = new_page(clinician)
    page.set_viewport_size(PHONE)
    page.goto(f"{base_url}/clinic")
    assert not overflows_horizontally(page)
    shot(page, "phone-clinician-worklist", full_page=True)
    page.close()


def test_the_chart_draws_under_the_csp_with_no_way_to_send_it_off_site(
    clinician: BrowserContext, base_url: str
) -> None:
    """Issue 13: Plotly's mode bar offered "Share chart..." (to Plotly's cloud); the page now
    runs under ``script-src 'self'; style-src 'self'`` (no inline script, no eval) and any
    CSP violation or off-site request fails this test (see ``new_page``)."""
    page = new_page(clinician)
    response = page.goto(f"{base_url}/clinic/patients/{OVERDUE_ID}")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    wait_for_chart(page)
    page.hover("#timeline")
    titles: list[str] = page.evaluate(
        "() => Array.from(document.querySelectorAll('#timeline .modebar-btn'))"
        ".map(b => b.getAttribute('data-title') || '')"
    )
    assert titles, "the mode bar is drawn"
    assert not [t for t in titles if "Share" in t or "Chart Studio" in t or "Plotly" in t], titles
    assert page.locator("#timeline a[href*='plotly']").count() == 0  # no logo link
    page.close()
