"""The Linux package: built by scripts/package-linux, installed with dpkg, run, removed."""

import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, start, stop

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dpkg") is None, reason="installing a .deb needs root and dpkg"
)


def test_the_deb_installs_runs_and_uninstalls():
    built = subprocess.run([str(ROOT / "scripts/package-linux"), "--debug"], capture_output=True, text=True,
                           timeout=1800, cwd=ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    package = ROOT / built.stdout.strip().splitlines()[-1]
    contents = subprocess.run(["dpkg-deb", "-c", str(package)], capture_output=True, text=True, check=True).stdout
    for path in ["./usr/bin/burncloud", "./usr/share/applications/burncloud.desktop",
                 "./usr/share/icons/hicolor/256x256/apps/burncloud.png"]:
        assert path in contents, path
    subprocess.run(["dpkg", "-i", str(package)], capture_output=True, text=True, check=True, timeout=300)
    try:
        version = subprocess.run(["/usr/bin/burncloud", "--version"], capture_output=True, text=True, check=True)
        assert version.stdout.startswith("burncloud ")
        with tempfile.TemporaryDirectory() as data:
            process, base = start(["/usr/bin/burncloud", "serve", "--listen", "127.0.0.1:0", "--data-dir", data])
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as response:
                    assert response.status == 200
            finally:
                assert stop(process) == 0
            assert (Path(data) / "burncloud.db").exists()
    finally:
        subprocess.run(["dpkg", "-r", "burncloud"], capture_output=True, check=True, timeout=300)
    assert not Path("/usr/bin/burncloud").exists()
