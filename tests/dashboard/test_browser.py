"""The dashboard in a real browser (Debian's chromium via Playwright) against a real
gateway subprocess and the loopback mock upstream: log in, create a key with a budget,
send a request with it, see it in Logs, its spend on Overview and Budgets, revoke it and
see the next request refused. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import re
from decimal import Decimal

import anthropic
import httpx
import openai as openai_sdk
import pytest
from playwright.sync_api import Page, expect

from conftest import OPENAI_UPSTREAM_KEY, GatewayServer
from dashboard.conftest import PHONE, log_in, shot
from tollway.accounting.cost import compute_cost
from tollway.accounting.pricing import PriceBook
from tollway.accounting.usage import Usage
from upstream_mock import ANTHROPIC_USAGE, MockUpstream

MODEL = "claude-sonnet-4-5"
pytestmark = pytest.mark.timeout(180)


def expected_cost() -> Decimal:
    usage = Usage(input_tokens=ANTHROPIC_USAGE["input_tokens"],
                  output_tokens=ANTHROPIC_USAGE["output_tokens"])  # fmt: skip
    return compute_cost(usage, PriceBook().lookup(MODEL)).total


def send(gw: GatewayServer, secret: str) -> anthropic.types.Message:
    with anthropic.Anthropic(base_url=gw.base_url, api_key=secret, max_retries=0) as client:
        return client.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-claude-code-session-id": "sess-browser-1"},
        )  # fmt: skip


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, f"page is {width}px wide"  # type: ignore[index]


def create_key(page: Page, name: str, budget: str) -> str:
    page.goto(page.url.split("#")[0] + "#/keys")
    page.get_by_role("button", name="New key").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Add budget").click()
    page.get_by_label("Budget amount in USD").fill(budget)
    page.get_by_label("Budget window").select_option("1d")
    page.get_by_role("button", name="Create key").click()
    panel = page.locator("#new-secret")
    expect(panel).to_be_visible()
    secret = page.locator("#secret-value").inner_text().strip()
    assert re.fullmatch(r"tw-[A-Za-z0-9_-]{43}", secret), secret
    return secret


def test_walkthrough(page: Page, gateway_server: GatewayServer) -> None:
    gw = gateway_server
    cost = expected_cost()
    assert cost == Decimal("0.000198")  # 21 input x $3/M + 9 output x $15/M
    usd = "$0.000198"  # as the API gives it (exact, normalised) and the pages show it
    page.goto(gw.base_url + "/")
    page.wait_for_url("**/ui/login")
    shot(page, "01-login")
    log_in(page, gw)
    expect(page.locator("#first-run")).to_contain_text("point Claude Code here")
    expect(page.locator("#first-run pre")).to_contain_text(f"ANTHROPIC_BASE_URL={gw.base_url}")
    shot(page, "02-overview-first-start")

    secret = create_key(page, "alice", "5")
    snippets = page.locator("#new-secret pre").all_inner_texts()
    assert f"export ANTHROPIC_BASE_URL={gw.base_url}" in snippets[0]
    assert f"export ANTHROPIC_API_KEY={secret}" in snippets[0]
    assert f'base_url = "{gw.base_url}/v1"' in snippets[1] and secret in snippets[1]
    row = page.get_by_role("row").filter(has_text="alice")
    expect(row).to_contain_text("$5.00/1d")
    page.locator("#copy-secret").click()
    expect(page.locator("#copy-secret")).to_have_text("Copied")
    shot(page, "03-key-created")
    # Shown once: the list and a reload never show the secret again.
    page.reload()
    expect(page.get_by_role("row").filter(has_text="alice")).to_be_visible()
    assert secret not in page.content()

    # Logs is open before the request: the record must appear without a reload.
    page.goto(gw.base_url + "/ui/#/logs")
    expect(page.locator("h1")).to_have_text("Logs")
    reply = send(gw, secret)
    assert reply.content[0].text  # type: ignore[union-attr]
    row = page.get_by_role("row").filter(has_text="alice")
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_contain_text(usd)
    expect(row).to_contain_text(MODEL)
    shot(page, "04-logs")
    row.click()
    expect(page.locator("h1")).to_contain_text("Request")
    tokens = page.get_by_role("table", name="Tokens and cost")
    expect(tokens.get_by_role("row").filter(has_text="input").first).to_contain_text("21")
    expect(tokens.get_by_role("row").filter(has_text="output")).to_contain_text("$0.000135")
    attempts = page.get_by_role("table", name="Attempts")
    expect(attempts).to_contain_text("anthropic")
    expect(attempts).to_contain_text("200")
    expect(page.get_by_text(f"(exact: {usd})")).to_be_visible()
    expect(page.locator("pre").first).to_contain_text('"hello"')
    shot(page, "05-log-detail")

    page.goto(gw.base_url + "/ui/#/overview")
    today = page.locator(".stat").filter(has_text="Spend today")
    expect(today).to_contain_text(usd)
    expect(today).to_contain_text("1 requests")
    expect(page.locator("#first-run")).to_have_count(0)
    expect(page.get_by_role("img", name="Spend per day by key")).to_be_visible()
    expect(page.get_by_role("table", name="Top keys this month")).to_contain_text("alice")
    shot(page, "06-overview")

    page.goto(gw.base_url + "/ui/#/budgets")
    panel = page.locator('[data-key="alice"]')
    expect(panel).to_contain_text("can make a request now")
    budget_row = panel.get_by_role("row").filter(has_text="key alice · 1d")
    expect(budget_row).to_contain_text(usd)
    expect(budget_row).to_contain_text("$5.00")
    shot(page, "07-budgets")

    page.goto(gw.base_url + "/ui/#/sessions")
    expect(page.get_by_role("row").filter(has_text="sess-browser-1")).to_contain_text(usd)
    shot(page, "08-sessions")

    page.goto(gw.base_url + "/ui/#/keys")
    page.get_by_role("button", name="Revoke alice").click()  # the confirm() is accepted
    expect(page.get_by_role("row").filter(has_text="alice")).to_contain_text("revoked")
    shot(page, "09-key-revoked")
    with pytest.raises(anthropic.AuthenticationError) as refused:
        send(gw, secret)
    assert "revoked" in str(refused.value)
    page.goto(gw.base_url + "/ui/#/budgets")
    panel = page.locator('[data-key="alice"]')
    expect(panel).to_contain_text("refused now")
    expect(panel).to_contain_text("this virtual key has been revoked")
    shot(page, "10-budgets-revoked")


def test_every_page_at_1280_and_on_a_phone(page: Page, gateway_server: GatewayServer) -> None:
    gw = gateway_server
    log_in(page, gw)
    secret = create_key(page, "bob", "20")
    send(gw, secret)
    pages = ["overview", "budgets", "logs", "sessions", "keys", "teams", "customers",
             "providers", "pricing"]  # fmt: skip
    for name in pages:
        page.goto(f"{gw.base_url}/ui/#/{name}")
        expect(page.locator("h1").first).to_be_visible()
        expect(page.get_by_role("alert")).to_have_count(0)
        no_horizontal_scroll(page)
        shot(page, f"page-{name}-1280")
    page.set_viewport_size(PHONE)
    for name in pages:
        page.goto(f"{gw.base_url}/ui/#/{name}")
        expect(page.locator("h1").first).to_be_visible()
        no_horizontal_scroll(page)
        shot(page, f"page-{name}-phone")
    page.get_by_role("button", name="Menu").click()
    expect(page.get_by_role("link", name="Pricing")).to_be_visible()
    shot(page, "phone-menu", full=False)


def test_forms_by_keyboard_with_errors_beside_the_field(
    page: Page, gateway_server: GatewayServer
) -> None:
    gw = gateway_server
    log_in(page, gw)
    create_key(page, "carol", "1")
    page.get_by_role("button", name="New key").click()
    # Keyboard only: the form opens focused on its first field.
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.type("carol")
    page.keyboard.press("Enter")  # submits the form
    name_error = page.locator(".field").filter(has=page.get_by_label("Name", exact=True))
    expect(name_error.locator(".error")).to_contain_text("named 'carol' exists")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    shot(page, "11-error-beside-name")
    page.get_by_label("Name", exact=True).fill("dave")
    page.get_by_role("button", name="Add budget").click()
    page.get_by_label("Budget amount in USD").fill("-3")
    page.get_by_role("button", name="Create key").click()
    budgets = page.locator("fieldset").filter(has_text="Budgets (USD")
    expect(budgets.locator(".error")).to_contain_text("Budget 1, amount: ")
    expect(page.get_by_label("Budget amount in USD")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name", exact=True)).not_to_have_attribute("aria-invalid", "true")
    shot(page, "12-error-beside-budget")
    page.get_by_label("Budget amount in USD").fill("3")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-secret")).to_contain_text("Key 'dave' created")
    # Teams: created through the form, then offered as a key's owner.
    page.goto(gw.base_url + "/ui/#/teams")
    page.get_by_role("button", name="New team").click()
    page.get_by_label("Name", exact=True).fill("platform")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("row").filter(has_text="platform")).to_be_visible()
    listed = httpx.get(f"{gw.base_url}/api/teams", headers=gw.admin_headers()).json()
    assert [t["name"] for t in listed] == ["platform"]


def test_top_up_a_budget_and_edit_a_provider(
    page: Page, gateway_server: GatewayServer, mock_upstream: MockUpstream
) -> None:
    gw = gateway_server
    log_in(page, gw)
    secret = create_key(page, "erin", "2")
    page.goto(gw.base_url + "/ui/#/budgets")
    page.get_by_role("button", name="Top up key erin · 1d").click()
    amount = page.get_by_label("Amount (USD), added to the current window only")
    expect(amount).to_be_focused()
    amount.fill("0")
    page.get_by_role("button", name="Top up", exact=True).click()
    expect(page.locator(".field").filter(has=amount).locator(".error")).to_contain_text(
        "greater than 0"
    )
    amount.fill("3")
    page.keyboard.press("Enter")
    row = page.locator('[data-key="erin"]').get_by_role("row").filter(has_text="key erin · 1d")
    expect(row).to_contain_text("$5.00")  # 2 + 3 for this window
    shot(page, "13-budget-topped-up")
    events = httpx.get(
        f"{gw.base_url}/api/budgets/{_budget_id(gw, 'erin')}/events", headers=gw.admin_headers()
    ).json()
    assert [(e["action"], e["amount"], e["actor"]) for e in events] == [
        ("top_up", "3", "dashboard")
    ]

    page.goto(gw.base_url + "/ui/#/providers")
    page.get_by_role("button", name="Edit openai").click()
    page.get_by_label("Models it serves (bare names, comma-separated)").fill("gpt-4.1-mini")
    page.get_by_role("button", name="Save provider").click()
    expect(page.get_by_role("row").filter(has_text="openai").first).to_contain_text("gpt-4.1-mini")
    providers = httpx.get(f"{gw.base_url}/api/providers", headers=gw.admin_headers()).json()
    openai = next(p for p in providers if p["name"] == "openai")
    assert openai["models"] == ["gpt-4.1-mini"] and openai["keys"][0]["value"] == "<redacted>"
    shot(page, "14-provider-edited")
    # The stored key survived the edit: a request for the new model reaches the upstream
    # with it.
    with openai_sdk.OpenAI(base_url=gw.base_url + "/v1", api_key=secret, max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}]
        )
    sent = mock_upstream.requests[-1]
    assert sent.raw_path.startswith("/v1/chat/completions")
    assert sent.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"


def _budget_id(gw: GatewayServer, key_name: str) -> str:
    keys = httpx.get(f"{gw.base_url}/api/dashboard/budgets", headers=gw.admin_headers()).json()
    (key,) = [k for k in keys if k["name"] == key_name]
    return str(key["budgets"][0]["budget_id"])
