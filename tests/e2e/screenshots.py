"""Saves a screenshot of every window page in English and Chinese, over real sample traffic.

Usage: screenshots.py OUT_DIR (run by scripts/screenshots).
"""

import sys
import tempfile
from pathlib import Path

import openai

from conftest import MOCK_BIN, UPSTREAM_KEY, BurnCloud, start, stop
from window import VirtualDisplay, Window

PAGES = ["dashboard", "logs", "channels", "groups", "tokens", "prices", "settings"]
LANGS = {"en": "en", "zh": "zh-CN"}


def sample_data(data_dir):
    """Fills the data dir through the real gateway: channels, prices, tokens and calls."""
    upstream, upstream_base = start([MOCK_BIN, "--key", UPSTREAM_KEY])
    app = BurnCloud(data_dir)
    try:
        for name, kind, models in [
            ("OpenAI (local mock)", "openai", ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]),
            ("DeepSeek (local mock)", "openai", ["deepseek-chat"]),
        ]:
            app.console("POST", "/console/api/channels", {
                "name": name, "kind": kind, "base_url": upstream_base + "/v1", "api_key": UPSTREAM_KEY, "models": models,
            })
        for model, price_in, price_out in [("gpt-4o-mini", "0.15", "0.6"), ("gpt-4o", "2.5", "10"), ("deepseek-chat", "0.27", "1.1")]:
            app.console("PUT", f"/console/api/prices/{model}", {"input_per_mtok": price_in, "output_per_mtok": price_out})
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
        stop(upstream)


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        sample_data(Path(data))
        display = VirtualDisplay()
        try:
            for lang_name, lang in LANGS.items():
                for page in PAGES:
                    window = Window(display, Path(data), page=page, lang=lang)
                    path = window.screenshot(out / f"{page}-{lang_name}.png")
                    stop(window.process)
                    print(path)
        finally:
            display.close()


if __name__ == "__main__":
    main(sys.argv[1])
