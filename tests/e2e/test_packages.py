"""The packages: the .deb (built by scripts/package-linux, installed with dpkg, run, removed) and the
Windows installers (cross-built by scripts/package-windows, checked from their insides)."""

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, start, stop

needs_dpkg = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dpkg") is None, reason="installing a .deb needs root and dpkg"
)


def assert_runs_and_serves(binary, data):
    """`binary --version` answers, and `binary serve` on `data` answers /health and stops cleanly."""
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("burncloud ")
    process, base = start([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data)])
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as response:
            assert response.status == 200
    finally:
        assert stop(process) == 0
    assert (Path(data) / "burncloud.db").exists()


@pytest.fixture(scope="module")
def linux_packages():
    """(server tarball, .deb) as scripts/package-linux builds them from the debug builds."""
    built = subprocess.run([str(ROOT / "scripts/package-linux"), "--debug"], capture_output=True, text=True,
                           timeout=1800, cwd=ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    paths = [ROOT / line for line in built.stdout.strip().splitlines()]
    tarball = next(path for path in paths if path.name.endswith("-linux.tar.gz"))
    deb = next(path for path in paths if path.suffix == ".deb")
    return tarball, deb


def test_the_server_tarball_serves_without_any_desktop_library(linux_packages):
    tarball, _ = linux_packages
    with tempfile.TemporaryDirectory() as unpacked, tempfile.TemporaryDirectory() as data:
        subprocess.run(["tar", "-xzf", str(tarball), "-C", unpacked], check=True)
        (folder,) = Path(unpacked).iterdir()
        assert {path.name for path in folder.iterdir()} >= {"burncloud", "README.md", "user-guide.md"}
        binary = folder / "burncloud"
        linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
        for library in ["libwebkit2gtk", "libgtk-3", "libjavascriptcoregtk", "libayatana"]:
            assert library not in linked, f"the server build links {library}:\n{linked}"
        assert_runs_and_serves(binary, data)


@needs_dpkg
def test_the_deb_installs_runs_and_uninstalls(linux_packages):
    _, package = linux_packages
    contents = subprocess.run(["dpkg-deb", "-c", str(package)], capture_output=True, text=True, check=True).stdout
    for path in ["./usr/bin/burncloud", "./usr/share/applications/burncloud.desktop",
                 "./usr/share/icons/hicolor/256x256/apps/burncloud.png"]:
        assert path in contents, path
    subprocess.run(["dpkg", "-i", str(package)], capture_output=True, text=True, check=True, timeout=300)
    try:
        with tempfile.TemporaryDirectory() as data:
            assert_runs_and_serves("/usr/bin/burncloud", data)
    finally:
        subprocess.run(["dpkg", "-r", "burncloud"], capture_output=True, check=True, timeout=300)
    assert not Path("/usr/bin/burncloud").exists()


def pe_facts(path):
    """(machine, subsystem, bytes) from a PE file's headers (Subsystem sits at the same offset in
    PE32 and PE32+)."""
    data = Path(path).read_bytes()
    assert data[:2] == b"MZ", "a DOS header"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe:pe + 4] == b"PE\0\0", "a PE signature"
    machine = struct.unpack_from("<H", data, pe + 4)[0]
    optional = pe + 24
    assert struct.unpack_from("<H", data, optional)[0] in (0x10B, 0x20B), "a PE32 or PE32+ optional header"
    subsystem = struct.unpack_from("<H", data, optional + 68)[0]
    return machine, subsystem, data


def test_the_windows_installers_hold_the_app_and_a_bundled_llama_cpp(tmp_path):
    # A llama.cpp Windows archive as the release has them (flat: llama-server.exe and its DLLs).
    bundled = tmp_path / "llama-b9999-bin-win-vulkan-x64.zip"
    with zipfile.ZipFile(bundled, "w") as archive:
        archive.writestr("llama-server.exe", b"MZ stand-in")
        archive.writestr("ggml-vulkan.dll", b"MZ stand-in")
    wrong = subprocess.run([str(ROOT / "scripts/package-windows"), "--debug", "--llama-cpp-zip", str(tmp_path / "x.zip")],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert wrong.returncode == 2 and "not a llama.cpp Windows release archive" in wrong.stderr + wrong.stdout
    built = subprocess.run([str(ROOT / "scripts/package-windows"), "--debug", "--llama-cpp-zip", str(bundled)],
                           capture_output=True, text=True, timeout=3600, cwd=ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    setup, msi = (ROOT / line for line in built.stdout.strip().splitlines()[-2:])
    assert setup.name.endswith("-setup.exe") and msi.suffix == ".msi"

    machine, subsystem, exe = pe_facts(ROOT / "dist/burncloud.exe")
    assert machine == 0x8664, "x86-64"
    assert subsystem == 2, "the GUI subsystem: no console window on double-click"
    assert "BurnCloud - local LLM gateway and model manager".encode("utf-16-le") in exe, "a version resource"
    assert "ProductVersion".encode("utf-16-le") in exe
    assert pe_facts(ROOT / "dist/WebView2Loader.dll")[0] == 0x8664

    assert pe_facts(setup)[0] == 0x8664, "the NSIS installer is a 64-bit Windows program, as the app is"
    listing = subprocess.run(["7z", "l", str(setup)], capture_output=True, text=True, check=True).stdout
    for name in ["burncloud.exe", "WebView2Loader.dll", bundled.name, bundled.name + ".sha256"]:
        assert name in listing, listing
    digest = hashlib.sha256(bundled.read_bytes()).hexdigest()
    sidecar = subprocess.run(["7z", "x", "-so", str(setup), f"llama-cpp/{bundled.name}.sha256"],
                             capture_output=True, text=True).stdout
    assert sidecar.startswith(digest), "the installer carries the archive's checksum: " + sidecar
    script = subprocess.run(["7z", "x", "-so", str(setup), "[NSIS].nsi"], capture_output=True, text=True).stdout
    if script:
        assert "EdgeUpdate" in script and "CreateShortcut" in script, "WebView2 check and shortcuts"

    files = subprocess.run(["msiinfo", "export", str(msi), "File"], capture_output=True, text=True, check=True).stdout
    assert "burncloud.exe" in files and "WebView2Loader.dll" in files, files
    assert bundled.name in files and bundled.name + ".sha256" in files, files
    shortcuts = subprocess.run(["msiinfo", "export", str(msi), "Shortcut"], capture_output=True, text=True,
                               check=True).stdout
    assert shortcuts.count("BurnCloud") >= 2, "Start menu and desktop shortcuts: " + shortcuts
    properties = subprocess.run(["msiinfo", "export", str(msi), "Property"], capture_output=True, text=True,
                                check=True).stdout
    assert "ProductName\tBurnCloud" in properties, properties
