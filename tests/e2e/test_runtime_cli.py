"""`burncloud runtime list|install|use` on a fresh data dir, against a local server that answers like
GitHub's llama.cpp releases API and serves a release archive laid out as llama.cpp's Linux builds
are (`llama-<tag>/llama-server` with its libraries), made from the real llama-server."""

import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

from conftest import BURNCLOUD_BIN

TAG = "b9101"
ASSET = f"llama-{TAG}-bin-ubuntu-x64.tar.gz"


def release_archive(server):
    """The server's folder as a release tarball: the binary and the shared libraries it loads."""
    folder = Path(server).parent
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for path in sorted(folder.iterdir()):
            name = path.name
            wanted = name == "llama-server" or name.endswith((".so.0", ".so.1")) or (
                name.endswith(".so") and not (folder / f"{name}.0").exists())
            if wanted:
                archive.add(path, arcname=f"llama-{TAG}/{name}")
    return buffer.getvalue()


def serve_release(archive):
    digest = hashlib.sha256(archive).hexdigest()

    class Releases(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/repos/ggml-org/llama.cpp/releases"):
                body = json.dumps([{"tag_name": TAG, "draft": False, "assets": [{
                    "name": ASSET, "size": len(archive), "digest": f"sha256:{digest}",
                    "browser_download_url": f"{base}/download/{ASSET}"}]}]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
            elif self.path == f"/download/{ASSET}":
                body = archive
                self.send_response(200)
            else:
                body = b"not found"
                self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Releases)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(*args, env):
    return subprocess.run([BURNCLOUD_BIN, "runtime", *args], capture_output=True, text=True, timeout=300, env=env)


def test_runtime_install_list_and_use_from_the_command_line(llama_server):
    server = serve_release(release_archive(llama_server))
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            env = {k: v for k, v in os.environ.items() if k != "BURNCLOUD_LLAMA_SERVER"}
            env["BURNCLOUD_LLAMACPP_RELEASES"] = f"http://127.0.0.1:{server.server_port}/repos/ggml-org/llama.cpp/releases"
            env["PATH"] = "/usr/bin:/bin"
            empty = run("list", "--data-dir", data_dir, env=env)
            assert empty.returncode == 0, empty.stderr
            assert "no llama.cpp runtime installed" in empty.stdout
            assert "recommended here:" in empty.stdout

            installed = run("install", "--variant", "cpu", "--data-dir", data_dir, env=env)
            assert installed.returncode == 0, installed.stderr
            assert f"* {TAG}-cpu  version:" in installed.stdout, installed.stdout
            server_path = Path(data_dir) / "runtimes" / f"{TAG}-cpu" / f"llama-{TAG}" / "llama-server"
            assert str(server_path) in installed.stdout
            assert "100%" in installed.stderr, installed.stderr

            listed = run("list", "--data-dir", data_dir, env=env)
            assert f"* {TAG}-cpu" in listed.stdout, listed.stdout

            wrong = run("use", "b1-vulkan", "--data-dir", data_dir, env=env)
            assert wrong.returncode != 0
            assert "no installed runtime b1-vulkan" in wrong.stderr, wrong.stderr
            bad = run("install", "--variant", "rocm", "--data-dir", data_dir, env=env)
            assert bad.returncode != 0 and "not cpu, vulkan or cuda" in bad.stderr, bad.stderr
            used = run("use", f"{TAG}-cpu", "--data-dir", data_dir, env=env)
            assert used.returncode == 0 and f"* {TAG}-cpu" in used.stdout, used.stderr
    finally:
        server.shutdown()
