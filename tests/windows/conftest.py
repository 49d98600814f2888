"""The Windows suite's harness: burncloud.exe and its installers, cross-built by scripts/test into
target/windows-test, run under Wine in one fresh prefix for the whole run and driven from Linux with
the same clients as the Linux binary. Only Wine's missing bcryptprimitives.dll is stood in for, by a
test-only shim copied into the prefix's system32; no installer carries it."""

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The Linux suite's helpers (start, poll, stop, the local hub and upstream), loaded under their own
# name: a second module called `conftest` would shadow this one.
_spec = importlib.util.spec_from_file_location("e2e_harness", ROOT / "tests/e2e/conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

ADMIN_KEY = e2e.ADMIN_KEY
UPSTREAM_KEY = e2e.UPSTREAM_KEY
TINY_REPO, TINY_FILE = e2e.TINY_REPO, e2e.TINY_FILE
poll, start, stop = e2e.poll, e2e.start, e2e.stop
upstream = e2e.upstream
tiny_gguf = e2e.tiny_gguf
tiny_hub = e2e.tiny_hub

WINE = "/usr/lib/wine/wine64"
WINESERVER = "/usr/lib/wine/wineserver"
KIT = Path(os.environ.get("BURNCLOUD_WINDOWS_KIT", ROOT / "target/windows-test"))
VERSION = next(line.split('"')[1] for line in (ROOT / "Cargo.toml").read_text().splitlines()
               if line.startswith("version"))


def windows_path(path):
    """A Linux path as Windows programs under Wine see it (drive Z: is the Linux root)."""
    return "Z:" + str(path).replace("/", "\\")


class Wine:
    """One Wine prefix (a fresh Windows user profile) and the commands run in it."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        self.profile = prefix / "drive_c/users" / self.user

    def env(self, **extra):
        """A Windows process's environment: Wine's own variables and what the test names, nothing
        from the Linux suite (its BURNCLOUD_LLAMA_SERVER is a Linux path)."""
        env = {name: os.environ[name] for name in ("PATH", "HOME", "USER", "TMPDIR") if name in os.environ}
        env.update(WINEPREFIX=str(self.prefix), WINEDEBUG="-all", LANG="C.UTF-8",
                   BURNCLOUD_LLAMACPP_RELEASES=os.environ["BURNCLOUD_LLAMACPP_RELEASES"])
        env.update(extra)
        return env

    def run(self, *args, timeout=180, **env):
        return subprocess.run([WINE, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=self.env(**env))

    def registry_value(self, key, name):
        """A value from the prefix's registry, or None where it is not set."""
        answer = self.run("reg", "query", key, "/v", name)
        for line in answer.stdout.splitlines():
            words = line.split(None, 2)
            if len(words) == 3 and words[0] == name:
                return words[2].strip()
        return None

    def running(self, image):
        """Linux processes of this prefix whose command line runs IMAGE (e.g. llama-server.exe)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environment = (entry / "environ").read_bytes()
            except OSError:
                continue
            if image.lower() in command.lower() and f"WINEPREFIX={self.prefix}".encode() in environment:
                found.append(int(entry.name))
        return found

    @property
    def installed(self):
        """Where both installers put the program: %LOCALAPPDATA%\\Programs\\BurnCloud."""
        return self.profile / "AppData/Local/Programs/BurnCloud"

    @property
    def start_menu(self):
        return self.profile / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs"

    @property
    def user_data(self):
        """BurnCloud's default data dir: %APPDATA%\\BurnCloud."""
        return self.profile / "AppData/Roaming/BurnCloud"


class WindowsBurnCloud(e2e.BurnCloud):
    """`burncloud.exe serve` under Wine, with the Linux suite's console helpers."""

    def __init__(self, wine, exe, data_dir=None, **env):
        self.wine = wine
        self.data_dir = data_dir
        command = [WINE, str(exe), "serve", "--listen", "127.0.0.1:0"]
        if data_dir is not None:
            command += ["--data-dir", windows_path(data_dir)]
        self.process, self.base = start(command, env=wine.env(BURNCLOUD_ADMIN_KEY=ADMIN_KEY, BURNCLOUD_LOG="warn", **env))

    def health(self):
        return self.console("GET", "/console/internal/health")

    def close(self):
        """Stops it the way Windows asks a program without a console to: `taskkill` (no /f) posts
        WM_CLOSE to its windows. Returns the exit status."""
        asked = self.wine.run("taskkill", "/im", "burncloud.exe")
        assert asked.returncode == 0, asked.stdout + asked.stderr
        try:
            return self.process.wait(timeout=30)
        finally:
            stop(self.process, signal.SIGKILL)


@pytest.fixture(scope="session")
def wine():
    """A fresh prefix for the whole run (about 10 s to create), ended with `wineserver -k`."""
    missing = [what for what, there in [("Wine (apt install wine64)", Path(WINE).exists()),
                                        ("the Windows kit (scripts/test builds target/windows-test)",
                                         (KIT / "current/burncloud.exe").exists())] if not there]
    if missing:
        if os.environ.get("BURNCLOUD_REQUIRE_WINE"):
            pytest.fail("BURNCLOUD_REQUIRE_WINE is set but these are missing: " + ", ".join(missing))
        pytest.skip("the Windows suite needs " + ", ".join(missing) + "; ./scripts/test installs and builds them")
    prefix = Path(tempfile.mkdtemp(prefix="burncloud-wine-"))
    wine = Wine(prefix)
    booted = wine.run("wineboot", "--init", timeout=300)
    assert booted.returncode == 0, booted.stderr[-2000:]
    # No display here: Wine's null graphics driver still gives programs their (hidden) windows.
    driver = wine.run("reg", "add", r"HKCU\Software\Wine\Drivers", "/v", "Graphics", "/d", "null", "/f")
    assert driver.returncode == 0, driver.stderr
    shutil.copy(KIT / "shim/bcryptprimitives.dll", prefix / "drive_c/windows/system32/bcryptprimitives.dll")
    # A new graphics driver takes effect with a new wineserver.
    subprocess.run([WINESERVER, "-k"], env=wine.env(), timeout=60)
    subprocess.run([WINESERVER, "-w"], env=wine.env(), timeout=60)
    yield wine
    subprocess.run([WINESERVER, "-k"], env=wine.env(), timeout=60)
    shutil.rmtree(prefix, ignore_errors=True)


def wait_until(check, timeout=60, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
