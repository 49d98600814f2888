"""The browser UI at /ui: Debian's chromium, driven by Playwright, against the real `burncloud
serve`. A user signs in with the admin key, adds a channel, creates a token and copies its key,
calls the gateway with it and finds the call on the dashboard and in the logs; uses a provider's
published price; then downloads a model from the (local) hub and deploys it on a real
llama-server."""

import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from openai import OpenAI

from conftest import ADMIN_KEY, REPLY, TINY_FILE, TINY_REPO, UPSTREAM_KEY, BurnCloud, poll, stop

CHROMIUM = os.environ.get("BURNCLOUD_CHROMIUM") or next(
    (found for name in ("chromium", "google-chrome", "chromium-browser") if (found := shutil.which(name))),
    "/usr/bin/chromium",
)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    sync_playwright = None

MISSING = None
if sync_playwright is None:
    MISSING = "the playwright package is missing (./scripts/test installs it)"
elif not Path(CHROMIUM).exists():
    MISSING = "no chromium or google-chrome (./scripts/test installs Debian's chromium)"
if MISSING and os.environ.get("BURNCLOUD_REQUIRE_BROWSER"):
    raise RuntimeError(f"BURNCLOUD_REQUIRE_BROWSER is set but {MISSING}")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING or "")

# Live views refresh every 3 s; a loaded machine may take a few rounds.
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def sign_in(browser, base):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(base + "/ui")
    expect(page).to_have_url(base + "/ui/login")
    page.fill("#key", "not-the-key")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("That is not the admin key")
    page.fill("#key", ADMIN_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector(".sidebar")
    return page


def open_page(page, page_id):
    page.click(f"[data-page={page_id}]")
    expect(page.locator(f"[data-page={page_id}]")).to_have_class("nav-item active")


def test_add_a_channel_create_a_token_call_through_it_and_see_the_call(browser, upstream):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        try:
            page = sign_in(browser, app.base)

            open_page(page, "channels")
            page.click("#add-channel")
            form = page.locator("#channel-form")
            form.locator("select[name=kind]").select_option("openai")
            form.locator("input[name=name]").fill("browser mock")
            form.locator("input[name=base_url]").fill(upstream + "/v1")
            form.locator("input[name=api_key]").fill(UPSTREAM_KEY)
            form.locator("textarea[name=models]").fill("gpt-4o-mini")
            page.click("#save-channel")
            expect(page.get_by_role("status")).to_contain_text("Saved")
            row = page.locator("#channel-table tbody tr")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("browser mock")
            expect(row).to_contain_text("sk-…6789")
            stored = app.console("GET", "/console/api/channels")
            assert [(c["name"], c["models"]) for c in stored] == [("browser mock", ["gpt-4o-mini"])]

            open_page(page, "tokens")
            page.click("#add-token")
            page.locator("#token-form input[name=name]").fill("from the browser")
            page.click("#create-token")
            key = page.locator("#new-key .key-box").inner_text().strip()
            assert key.startswith("sk-bc-")
            page.locator("#new-key").get_by_role("button", name="Copy").click()
            expect(page.locator("#new-key")).to_contain_text("Copied")
            assert page.evaluate("navigator.clipboard.readText()") == key
            expect(page.locator("#token-table tbody tr")).to_contain_text("from the browser")
            # Ollama clients on this machine that send no key are charged to the token picked here.
            page.locator("#token-table tbody tr", has_text="from the browser").locator(".keyless-toggle").click()
            expect(page.locator("#token-table .keyless")).to_have_count(1)
            picked = [t["name"] for t in app.console("GET", "/console/api/tokens") if t["keyless_local"]]
            assert picked == ["from the browser"], picked

            client = OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0)
            answer = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from the browser test"}]
            )
            assert answer.choices[0].message.content == REPLY

            open_page(page, "dashboard")
            recent = page.locator("#recent-calls tbody tr")
            expect(recent).to_have_count(1, timeout=WAIT_MS)
            expect(recent).to_contain_text("gpt-4o-mini")

            # A second call; its x-request-id finds it among the logged calls.
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "the call to look up"}]
            )
            request_id = raw.headers["x-request-id"]
            second = raw.parse()

            open_page(page, "logs")
            logged = page.locator("#log-table tbody tr")
            expect(logged).to_have_count(2, timeout=WAIT_MS)
            expect(logged.first).to_contain_text("from the browser")
            expect(logged.first).to_contain_text("browser mock")
            page.get_by_label("Request ID").fill(request_id)
            expect(logged).to_have_count(1)
            logged.click()
            detail = page.locator("#log-detail")
            expect(detail).to_contain_text(request_id)
            expect(detail).to_contain_text("gpt-4o-mini")
            expect(detail).to_contain_text(str(second.usage.prompt_tokens))
            page.get_by_label("Request ID").fill("req-00000000000000000000000000000000")
            expect(logged).to_have_count(0)
            expect(page.locator("main")).to_contain_text("Change or clear the filters above")

            # The language switches in place, and the page follows.
            page.get_by_role("button", name="简体中文").click()
            expect(page.locator("[data-page=logs]")).to_contain_text("日志")

            # Signing out ends the session: the pages send the browser back to sign in.
            page.get_by_role("button", name="Sign out · 退出登录").click()
            expect(page).to_have_url(app.base + "/ui/login")
            page.goto(app.base + "/ui")
            expect(page).to_have_url(app.base + "/ui/login")
        finally:
            stop(app.process)


def test_search_download_and_deploy_a_model(browser, tiny_hub, llama_server):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir), tiny_hub.env())
        try:
            page = sign_in(browser, app.base)
            open_page(page, "models")
            page.click("[data-source=huggingface]")
            page.fill("input[name=q]", "tiny")
            page.click("#search")
            result = page.locator("#hub-results tbody tr")
            expect(result).to_have_count(1)
            expect(result).to_contain_text(TINY_REPO)
            result.get_by_role("button", name="Files").click()
            files = page.locator("#hub-files")
            expect(files).to_contain_text(TINY_FILE)
            files.get_by_role("button", name="Download").click()
            expect(page.locator("#downloads .download[data-state=done]")).to_have_count(1, timeout=60_000)
            expect(page.locator("#local-table tbody tr")).to_contain_text(TINY_FILE)

            open_page(page, "deployments")
            page.click("#new-deployment")
            deploy_form = page.locator("#deploy-form")
            expect(deploy_form.locator("select[name=model_id]")).to_have_value(re.compile(r"^[0-9]+$"))
            deploy_form.locator("input[name=alias]").fill("tiny-browser")
            deploy_form.locator("input[name=ctx_size]").fill("256")
            page.click("#deploy")
            ready = page.locator(".instance[data-state=ready]")
            expect(ready).to_have_count(1, timeout=90_000)
            expect(ready).to_contain_text("tiny-browser")
            expect(ready.locator(".snippet")).to_contain_text(app.base.removeprefix("http://"))

            instances = app.console("GET", "/console/api/instances")
            assert [(i["alias"], i["state"]) for i in instances] == [("tiny-browser", "ready")]
        finally:
            stop(app.process)


def session_cookie(base):
    """Signs in as a browser would and returns the session cookie's value."""

    class KeepRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(KeepRedirect)
    body = urllib.parse.urlencode({"key": ADMIN_KEY}).encode()
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(urllib.request.Request(base + "/ui/login", data=body, headers={"Origin": base}), timeout=10)
    assert answer.value.code == 303
    assert answer.value.headers["Location"] == "/ui"
    cookie = answer.value.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN_KEY not in cookie
    return cookie.split(";")[0]


def socket_handshake(base, headers):
    host = urllib.parse.urlsplit(base).netloc
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.request("GET", "/ui/ws", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **headers,
    })
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_ui_answers_only_a_signed_in_browser_on_its_own_origin(tmp_path):
    app = BurnCloud(tmp_path / "data")
    try:
        cookie = session_cookie(app.base)
        assert socket_handshake(app.base, {"Cookie": cookie, "Origin": app.base}) == 101
        assert socket_handshake(app.base, {"Origin": app.base}) == 401, "no session"
        assert socket_handshake(app.base, {"Cookie": cookie, "Origin": "http://evil.example"}) == 403
        assert socket_handshake(app.base, {"Cookie": "burncloud_ui=" + ADMIN_KEY, "Origin": app.base}) == 401

        with urllib.request.urlopen(urllib.request.Request(app.base + "/ui", headers={"Cookie": cookie}), timeout=10) as page:
            assert page.status == 200
            assert page.headers["X-Frame-Options"] == "DENY"
            assert page.headers["Cache-Control"] == "no-store"
            assert "/ui/ws" in page.read().decode()

        # A sign-in posted from another site's page is refused, even with the right key.
        body = urllib.parse.urlencode({"key": ADMIN_KEY}).encode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(app.base + "/ui/login", data=body,
                                                          headers={"Origin": "http://evil.example"}), timeout=10)
        assert refused.value.code == 403
    finally:
        stop(app.process)


def test_talk_to_a_cloud_and_a_local_model_in_the_playground(browser, upstream, llama_server, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        try:
            app.console("POST", "/console/api/channels", {
                "name": "cloud", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
                "models": ["gpt-4o-mini"]})
            app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1.5", "output_per_mtok": "6"})
            model = app.console("POST", "/console/api/models/local/import", {"path": str(tiny_gguf)})
            local = app.console("POST", "/console/api/instances",
                                {"model_id": model["id"], "ctx_size": 512, "parallel": 1, "start": False})
            page = sign_in(browser, app.base)
            open_page(page, "playground")

            page.locator("#playground-model").select_option("gpt-4o-mini")
            page.fill("#playground-system", "Be brief.")
            page.fill("#playground-input", "hello from the playground")
            page.click("#playground-send")
            answer = page.locator(".turn.assistant").last
            expect(answer).to_contain_text(REPLY)
            stats = answer.locator(".turn-stats")
            expect(stats).to_contain_text("First token")
            expect(stats).to_contain_text("→ 9 tokens")
            expect(stats).to_contain_text("Cost")
            clipboard_holds = "async (text) => (await navigator.clipboard.readText()).includes(text)"
            page.click("#playground-copy-curl")
            page.wait_for_function(clipboard_holds, arg="/v1/chat/completions")
            copied = page.evaluate("navigator.clipboard.readText()")
            assert "gpt-4o-mini" in copied and "Be brief." in copied and "$BURNCLOUD_TOKEN" in copied, copied
            page.click("#playground-copy-python")
            page.wait_for_function(clipboard_holds, arg="from openai import OpenAI")
            copied = page.evaluate("navigator.clipboard.readText()")
            assert "hello from the playground" in copied and "Be brief." in copied, copied

            # The local model is not loaded: the call loads it, then the answer streams in.
            page.locator("#playground-model").select_option("tiny")
            page.fill("input[name=max_tokens]", "5")
            page.fill("#playground-input", "and now the local one")
            page.click("#playground-send")
            expect(page.locator(".turn.assistant").last.locator(".turn-stats")).to_contain_text("→ 5 tokens")
            assert app.console("GET", f"/console/api/instances/{local['id']}")["state"] == "ready"

            # A long answer, stopped: the call ends and is logged as cancelled.
            page.fill("input[name=max_tokens]", "3000")
            page.fill("#playground-input", "a long one")
            page.click("#playground-send")
            page.click("#playground-stop")
            expect(page.locator(".turn.assistant").last).to_contain_text("Stopped")
            expect(page.locator("#playground-send")).to_be_visible()

            def latest():
                return app.console("GET", "/console/api/logs?limit=1")["items"][0]
            cancelled = poll(latest, lambda row: row["end_reason"] == "client_cancelled")
            assert cancelled["model"] == "tiny" and cancelled["token_name"] == "Playground", cancelled

            page.get_by_role("button", name="简体中文").click()
            expect(page.locator("main")).to_contain_text("系统提示词")
        finally:
            stop(app.process)


def test_use_a_published_price_and_see_its_peak_hours(browser):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        try:
            page = sign_in(browser, app.base)
            open_page(page, "prices")
            presets = page.locator("#preset-table tbody tr")
            page.locator("select[name=preset-provider]").select_option("DeepSeek")
            flash = presets.filter(has_text="deepseek-flash")
            expect(flash).to_contain_text("0.15")
            expect(flash).to_contain_text("01:00-04:00, 06:00-10:00 UTC")
            expect(flash.get_by_role("link")).to_have_attribute("href", re.compile(r"^https://"))
            flash.get_by_role("button", name="Use").click()
            expect(page.get_by_role("status")).to_contain_text("Prices set: 1")
            expect(flash).to_contain_text("In use")
            kept = page.locator("#price-table tbody tr", has_text="deepseek-flash")
            expect(kept).to_contain_text("peak 01:00-04:00, 06:00-10:00 UTC Mon–Fri: 0.3 / 1.2")
            stored = {p["model"]: p for p in app.console("GET", "/console/api/prices")}
            assert stored["deepseek-flash"]["peak"]["input_per_mtok"] == "0.3", stored

            # A channel serving a model with no price yet: the page offers its published price.
            app.console("POST", "/console/api/channels", {
                "name": "deepseek", "kind": "deepseek", "api_key": "sk-test", "models": ["deepseek-v4-pro"],
            })
            open_page(page, "channels")
            open_page(page, "prices")
            served = page.locator("#served-unpriced")
            expect(served).to_contain_text("deepseek-v4-pro")
            served.get_by_role("button", name="Use their published prices").click()
            expect(served).to_have_count(0)
            stored = {p["model"]: p for p in app.console("GET", "/console/api/prices")}
            assert stored["deepseek-v4-pro"]["input_per_mtok"] == "0.66", stored

            page.locator("select[name=preset-provider]").select_option("Qwen")
            expect(page.locator("#presets-elsewhere")).to_contain_text("CNY")
        finally:
            stop(app.process)
