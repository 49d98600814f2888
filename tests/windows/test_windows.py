"""BurnCloud for Windows, run for real under Wine: `burncloud.exe serve` answering the official SDKs
from a data dir with spaces and non-ASCII letters, keeping every log row across a close and a
restart, defaulting to %APPDATA%\\BurnCloud, downloading a model and running it on llama-server.exe
under its supervision, probing the PC's hardware; the NSIS and MSI installers installed silently,
upgraded and uninstalled."""

import hashlib
import signal
import sqlite3
import subprocess

import anthropic
import openai

from conftest import (KIT, TINY_FILE, TINY_REPO, UPSTREAM_KEY, VERSION, WindowsBurnCloud, poll, stop, wait_until,
                      windows_path)

EXE = KIT / "current/burncloud.exe"
UNINSTALL_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\BurnCloud"
BUNDLED_RUNTIME = "b11434-cpu"


def add_channel(app, upstream):
    app.console("POST", "/console/api/channels", {
        "name": "local mock", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
        "models": ["gpt-4o-mini"]})
    app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1.5", "output_per_mtok": "6"})


def chat_once(app, key):
    client = openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=60)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content


def test_serve_answers_the_sdks_from_a_data_dir_with_spaces_and_non_ascii_and_keeps_every_log_row(
        wine, upstream, tmp_path):
    data = tmp_path / "Burn Cloud 数据 é"
    app = WindowsBurnCloud(wine, EXE, data)
    try:
        health = app.health()
        assert health["status"] == "ok"
        add_channel(app, upstream)
        key = app.token()
        client = openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=60)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content and reply.usage.total_tokens > 0
        streamed = client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                  messages=[{"role": "user", "content": "hi"}])
        assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
        message = anthropic.Anthropic(base_url=app.base, api_key=key, max_retries=0, timeout=60).messages.create(
            model="gpt-4o-mini", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].text and message.usage.output_tokens > 0
        # Closed at once after the last answer: the rows still queued must be stored before exit.
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)

    assert (data / "burncloud.db").exists(), "the data dir is the one named, spaces and all"
    with sqlite3.connect(data / "burncloud.db") as connection:
        logged, count, failed = connection.execute(
            "SELECT COALESCE(SUM(cost_nano), 0), COUNT(*), COUNT(*) FILTER (WHERE status != 200) FROM logs").fetchone()
        charged = connection.execute("SELECT COALESCE(SUM(used_quota_nano), 0) FROM tokens").fetchone()[0]
        # Secrets at rest: the channel's key is sealed; the data key is where health said it is.
        (stored,) = connection.execute("SELECT api_key FROM channels").fetchone()
    assert (count, failed) == (3, 0), "every call's row was stored before the exe exited"
    assert logged == charged > 0, f"logged costs {logged} equal the charged quota {charged}"
    assert stored.startswith("bc-enc:v1:") and UPSTREAM_KEY not in stored
    if health["secrets"] == "keyring":
        assert not (data / "secret.key").exists(), "with Credential Manager, no key file is written"
    else:
        assert health["secrets"] == "file" and (data / "secret.key").exists(), health

    again = WindowsBurnCloud(wine, EXE, data)
    try:
        assert again.health()["secrets"] == health["secrets"]
        logs = again.console("GET", "/console/api/logs?limit=50")["items"]
        assert [row["status"] for row in logs] == [200, 200, 200], logs
        # The upstream only answers its own key: the sealed key opened again after the restart.
        assert chat_once(again, key)
        assert again.close() == 0
    finally:
        stop(again.process, signal.SIGKILL)


def test_without_a_data_dir_the_data_lives_in_appdata(wine):
    app = WindowsBurnCloud(wine, EXE)
    try:
        assert app.health()["status"] == "ok"
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)
    assert (wine.user_data / "burncloud.db").exists(), list(wine.profile.rglob("burncloud.db"))


def test_a_model_downloads_from_the_hub_and_runs_on_llama_server_exe_under_supervision(
        wine, tiny_hub, tiny_gguf, tmp_path):
    # As under C:\Users\<a name in Chinese>\AppData: llama-server.exe must open a model there too.
    data = tmp_path / "用户 Zoë" / "BurnCloud"
    env = {**tiny_hub.env(), "BURNCLOUD_LLAMA_SERVER": windows_path(KIT / "llama/llama-server.exe")}
    app = WindowsBurnCloud(wine, EXE, data, **env)
    try:
        started = app.console("POST", "/console/api/downloads",
                              {"source": "hf-mirror", "repo": TINY_REPO, "path": TINY_FILE})
        done = poll(lambda: app.console("GET", f"/console/api/downloads/{started['id']}"),
                    lambda d: d["state"] in {"done", "failed"})
        assert done["state"] == "done", done
        local = app.console("GET", f"/console/api/models/local/{done['local_model_id']}")
        on_disk = data / "models/hf-mirror/burncloud/Tiny-GGUF" / TINY_FILE
        assert local["path"] == windows_path(on_disk), local["path"]
        assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()

        instance = app.console("POST", "/console/api/instances",
                               {"model_id": local["id"], "ctx_size": 256, "parallel": 1})
        ready = poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"),
                     lambda i: i["state"] in {"ready", "failed"}, timeout=180)
        assert ready["state"] == "ready", ready
        assert wine.running("llama-server.exe"), "llama-server.exe runs under Wine"
        alias = ready["alias"]
        client = openai.OpenAI(base_url=app.base + "/v1", api_key=app.token(), max_retries=0, timeout=120)
        reply = client.chat.completions.create(model=alias, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert reply.usage.completion_tokens > 0

        app.console("POST", f"/console/api/instances/{instance['id']}/stop")
        poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"), lambda i: i["state"] == "stopped")
        wait_until(lambda: not wine.running("llama-server.exe"), 30, "llama-server.exe to exit after stop")

        # A call loads it again on demand; then the app is killed outright.
        reply = client.chat.completions.create(model=alias, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert reply.usage.completion_tokens > 0
        assert wine.running("llama-server.exe")
    finally:
        stop(app.process, signal.SIGKILL)
    # The job object BurnCloud puts llama-server.exe in dies with it: no orphan keeps the port or the RAM.
    wait_until(lambda: not wine.running("llama-server.exe"), 30, "llama-server.exe to die with burncloud.exe")


def test_the_hardware_probe_reads_this_pc_and_what_llama_server_exe_can_use(wine, tmp_path):
    # No NVIDIA driver here (nvml.dll is absent): that is a plain "no CUDA", never a failed start.
    env = {"BURNCLOUD_LLAMA_SERVER": windows_path(KIT / "llama/llama-server.exe")}
    app = WindowsBurnCloud(wine, EXE, tmp_path / "probe", **env)
    try:
        hardware = app.console("GET", "/console/api/hardware")
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)
    assert (hardware["os"], hardware["arch"]) == ("windows", "x86_64"), hardware
    assert hardware["cpu"]["model"] not in ("", "unknown") and hardware["cpu"]["logical_cores"] >= 1, hardware
    assert 0 < hardware["memory"]["available_bytes"] <= hardware["memory"]["total_bytes"], hardware
    assert not any(gpu["found_by"] == "nvml" for gpu in hardware["gpus"]), hardware
    nvml = [note["reason"] for note in hardware["unknown"] if note["probe"] == "nvml"]
    assert nvml and "CUDA is not available" in nvml[0], hardware["unknown"]
    # The bundled CPU build answered `--list-devices` (it lists no GPU under Wine): a list, not a
    # failed probe.
    assert hardware["runtime_devices"] is not None, hardware["unknown"]
    assert not any("list-devices" in note["probe"] for note in hardware["unknown"]), hardware["unknown"]
    if not hardware["gpus"]:
        assert (hardware["recommended_variant"], hardware["recommendation"]) == ("cpu", "CPU, no GPU detected")


def install_nsis(wine, version):
    setup = KIT / ("old" if version == "0.0.1" else "current") / f"BurnCloud-{version}-setup.exe"
    ran = wine.run(setup, "/S")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # Judged by what it leaves, never by the exit status.
    wait_until(lambda: wine.registry_value(UNINSTALL_KEY, "DisplayVersion") == version, 60,
               f"the uninstall entry of {version}")


def test_the_nsis_installer_installs_upgrades_and_uninstalls_keeping_the_data(wine, tiny_gguf):
    install_nsis(wine, "0.0.1")
    program = wine.installed
    for name in ["burncloud.exe", "WebView2Loader.dll", "uninstall.exe",
                 "llama-cpp/llama-b11434-bin-win-cpu-x64.zip", "llama-cpp/llama-b11434-bin-win-cpu-x64.zip.sha256"]:
        assert (program / name).is_file(), name
    assert (wine.start_menu / "BurnCloud/BurnCloud.lnk").is_file()
    assert (wine.start_menu / "BurnCloud/Uninstall BurnCloud.lnk").is_file()
    assert not (program / "bcryptprimitives.dll").exists(), "the Wine shim is never installed"

    app = WindowsBurnCloud(wine, program / "burncloud.exe")
    try:
        # The installed exe installs the llama.cpp build the installer carried as its first runtime,
        # which means llama-server.exe ran (--version, --list-devices) from there.
        runtimes = poll(lambda: app.console("GET", "/console/api/runtimes"), lambda r: any(x["active"] for x in r))
        assert [(r["id"], r["active"]) for r in runtimes] == [(BUNDLED_RUNTIME, True)], runtimes
        assert "version" in runtimes[0]["version"].lower(), runtimes[0]
        kept = app.console("POST", "/console/api/tokens", {"name": "kept across the upgrade"})
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)

    install_nsis(wine, VERSION)
    app = WindowsBurnCloud(wine, program / "burncloud.exe")
    try:
        names = [t["name"] for t in app.console("GET", "/console/api/tokens")]
        assert "kept across the upgrade" in names, names
        assert [r["id"] for r in app.console("GET", "/console/api/runtimes")] == [BUNDLED_RUNTIME]
        # A local model on the installed app's own runtime: the first-run path of a Windows desktop.
        model = app.console("POST", "/console/api/models/local/import", {"path": windows_path(tiny_gguf)})
        instance = app.console("POST", "/console/api/instances", {"model_id": model["id"], "ctx_size": 256,
                                                                  "parallel": 1, "start": False})
        client = openai.OpenAI(base_url=app.base + "/v1", api_key=kept["key"], max_retries=0, timeout=180)
        reply = client.chat.completions.create(model=instance["alias"], max_tokens=8,
                                               messages=[{"role": "user", "content": "hi"}])
        assert reply.usage.completion_tokens > 0
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)
    wait_until(lambda: not wine.running("llama-server.exe"), 30, "llama-server.exe to stop with the app")

    # NSIS's uninstaller copies itself to a temp folder and returns at once: wait for its work.
    ran = wine.run(program / "uninstall.exe", "/S")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    wait_until(lambda: not program.exists(), 60, "the program folder to go")
    assert not (wine.start_menu / "BurnCloud").exists()
    assert wine.registry_value(UNINSTALL_KEY, "DisplayVersion") is None
    assert (wine.user_data / "burncloud.db").is_file(), "the user's data stays"


def msiexec(wine, *args):
    ran = wine.run("msiexec", *args, "/qn", timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_the_msi_installs_upgrades_and_uninstalls_keeping_the_data(wine):
    old, current = KIT / "old/BurnCloud-0.0.1.msi", KIT / f"current/BurnCloud-{VERSION}.msi"
    msiexec(wine, "/i", windows_path(old))
    program = wine.installed
    assert (program / "burncloud.exe").is_file() and (program / "WebView2Loader.dll").is_file()
    assert (wine.start_menu / "BurnCloud/BurnCloud.lnk").is_file()
    app = WindowsBurnCloud(wine, program / "burncloud.exe")
    try:
        app.console("POST", "/console/api/tokens", {"name": "kept across the MSI upgrade"})
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)

    msiexec(wine, "/i", windows_path(current))
    app = WindowsBurnCloud(wine, program / "burncloud.exe")
    try:
        names = [t["name"] for t in app.console("GET", "/console/api/tokens")]
        assert "kept across the MSI upgrade" in names, names
        assert app.close() == 0
    finally:
        stop(app.process, signal.SIGKILL)

    # Removing the new version leaves nothing: the upgrade replaced the old product rather than
    # installing beside it (whose files would stay behind).
    msiexec(wine, "/x", windows_path(current))
    wait_until(lambda: not (program / "burncloud.exe").exists(), 60, "the program to go")
    assert not (wine.start_menu / "BurnCloud/BurnCloud.lnk").exists()
    assert (wine.user_data / "burncloud.db").is_file(), "the user's data stays"


def test_no_installer_carries_the_wine_shim():
    for folder in ["old", "current"]:
        for package in (KIT / folder).iterdir():
            if package.suffix == ".msi":
                listing = subprocess.run(["msiinfo", "export", str(package), "File"], capture_output=True, text=True,
                                         check=True).stdout
            elif package.name.endswith("-setup.exe"):
                listing = subprocess.run(["7z", "l", str(package)], capture_output=True, text=True, check=True).stdout
            else:
                continue
            assert "burncloud.exe" in listing and "bcryptprimitives" not in listing.lower(), (package, listing)
