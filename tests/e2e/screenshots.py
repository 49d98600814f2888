"""Saves a screenshot of every window page in English and Chinese, over real sample traffic, and of
the Playground with a conversation (the same page in the browser UI, driven by Playwright).

Usage: screenshots.py OUT_DIR (run by scripts/screenshots).
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import openai

from conftest import MOCK_BIN, ROOT, UPSTREAM_KEY, BurnCloud, MockHub, poll, start, stop
from window import VirtualDisplay, Window

PAGES = ["dashboard", "logs", "channels", "groups", "tokens", "prices", "models", "deployments", "playground", "settings"]
LANGS = {"en": "en", "zh": "zh-CN"}


def local_model(app):
    """A real GGUF downloaded from the local hub, and a deployment of it on llama-server."""
    download = app.console("POST", "/console/api/downloads",
                           {"source": "huggingface", "repo": "burncloud/Tiny-GGUF", "path": "tiny-F32.gguf"})
    done = poll(lambda: app.console("GET", f"/console/api/downloads/{download['id']}"),
                lambda d: d["state"] in ("done", "failed"))
    if os.environ.get("BURNCLOUD_LLAMA_SERVER"):
        instance = app.console("POST", "/console/api/instances",
                               {"model_id": done["local_model_id"], "alias": "tiny-local", "ctx_size": 512})
        poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"),
             lambda i: i["state"] in ("ready", "failed"))


def sample_data(data_dir, gguf, upstream_base):
    """Fills the data dir through the real gateway: channels, prices, tokens, calls, a local model."""
    hub = MockHub({"burncloud/Tiny-GGUF:tiny-F32.gguf": gguf})
    app = BurnCloud(data_dir, hub.env())
    try:
        local_model(app)
        for name, kind, models in [
            ("OpenAI (local mock)", "openai", ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]),
            ("DeepSeek (local mock)", "openai", ["deepseek-chat"]),
        ]:
            app.console("POST", "/console/api/channels", {
                "name": name, "kind": kind, "base_url": upstream_base + "/v1", "api_key": UPSTREAM_KEY, "models": models,
            })
        for model, price_in, price_out in [("gpt-4o-mini", "0.15", "0.6"), ("gpt-4o", "2.5", "10")]:
            app.console("PUT", f"/console/api/prices/{model}", {"input_per_mtok": price_in, "output_per_mtok": price_out})
        app.console("POST", "/console/api/prices/presets/apply", {"models": ["deepseek-chat"]})
        keys = [app.token(name="laptop"), app.token(name="ci-runner", quota_limit="5", rpm_limit=60)]
        for i in range(36):
            client = openai.OpenAI(base_url=app.base + "/v1", api_key=keys[i % 2], max_retries=0)
            model = ["gpt-4o-mini", "gpt-4o", "deepseek-chat"][i % 3]
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}], stream=i % 4 == 0)
        try:
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
        except openai.NotFoundError:
            pass
        app.console("POST", "/console/api/account/topup", {"amount": "20"})
    finally:
        stop(app.process)
        hub.close()


def fresh_install(display, out):
    """The Deployments page of a new install: no llama.cpp yet, and the one button that installs it."""
    saved = os.environ.pop("BURNCLOUD_LLAMA_SERVER", None)
    try:
        for lang_name, lang in LANGS.items():
            with tempfile.TemporaryDirectory() as fresh:
                window = Window(display, Path(fresh), page="deployments", lang=lang)
                print(window.screenshot(out / f"deployments-fresh-{lang_name}.png"))
                stop(window.process)
    finally:
        if saved:
            os.environ["BURNCLOUD_LLAMA_SERVER"] = saved


def playground(data, out):
    """The Playground after one exchange with a cloud model, in both languages."""
    from playwright.sync_api import expect, sync_playwright

    from conftest import ADMIN_KEY
    from test_browser_ui import CHROMIUM

    app = BurnCloud(data)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for lang_name, label in [("en", "English"), ("zh", "简体中文")]:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(app.base + "/ui")
                page.fill("#key", ADMIN_KEY)
                page.click("button[type=submit]")
                page.get_by_role("button", name=label).click()
                page.click("[data-page=playground]")
                page.locator("#playground-model").select_option("deepseek-chat")
                page.fill("#playground-system", "Answer in one short paragraph.")
                page.fill("#playground-input", "What does BurnCloud do?" if lang_name == "en" else "BurnCloud 是做什么的？")
                page.click("#playground-send")
                expect(page.locator(".turn-stats")).to_be_visible(timeout=30_000)
                page.screenshot(path=str(out / f"playground-chat-{lang_name}.png"))
                print(out / f"playground-chat-{lang_name}.png")
                page.close()
            browser.close()
    finally:
        stop(app.process)


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        gguf = Path(data) / "tiny.gguf"
        subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_tiny_gguf.py"), str(gguf)], check=True)
        upstream, upstream_base = start([MOCK_BIN, "--key", UPSTREAM_KEY])
        sample_data(Path(data) / "app", gguf, upstream_base)
        data = Path(data) / "app"
        display = VirtualDisplay()
        try:
            playground(data, out)
            for lang_name, lang in LANGS.items():
                for page in PAGES:
                    window = Window(display, data, page=page, lang=lang)
                    path = window.screenshot(out / f"{page}-{lang_name}.png")
                    stop(window.process)
                    print(path)
            fresh_install(display, out)
        finally:
            display.close()
            stop(upstream)


if __name__ == "__main__":
    main(sys.argv[1])
