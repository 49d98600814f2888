"""The model hub through the real `burncloud serve`: a real GGUF downloaded from a local hub,
verified, and still completed after the app is killed with SIGKILL mid-download."""

import hashlib
import signal
import tempfile
import time
from pathlib import Path


from conftest import TINY_FILE as FILE, TINY_REPO as REPO, BurnCloud, poll, stop

def wait_for(app, download_id, states):
    return poll(lambda: app.console("GET", f"/console/api/downloads/{download_id}"), lambda d: d["state"] in states)


def test_search_list_and_download_a_real_gguf(tiny_hub, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir), tiny_hub.env())
        try:
            found = app.console("GET", "/console/api/hub/search?source=hf-mirror&q=tiny")
            assert [r["repo"] for r in found["data"]] == [REPO]
            files = app.console("GET", f"/console/api/hub/files?source=modelscope&repo={REPO}")["files"]
            expected = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
            assert files[0]["path"] == FILE and files[0]["sha256"] == expected and files[0]["quant"] == "F32"

            started = app.console("POST", "/console/api/downloads", {"source": "hf-mirror", "repo": REPO, "path": FILE})
            done = wait_for(app, started["id"], {"done", "failed"})
            assert done["state"] == "done", done
            local = app.console("GET", f"/console/api/models/local/{done['local_model_id']}")
            assert local["sha256"] == expected
            path = Path(local["path"])
            assert path == Path(data_dir) / "models" / "hf-mirror" / "burncloud" / "Tiny-GGUF" / FILE
            assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
        finally:
            stop(app.process)


def test_a_download_survives_sigkill_and_resumes_from_its_partial_file(tiny_hub, tiny_gguf):
    size = tiny_gguf.stat().st_size
    tiny_hub.faults(throttle_bps=size // 4)
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir), tiny_hub.env())
        started = app.console("POST", "/console/api/downloads", {"source": "huggingface", "repo": REPO, "path": FILE})
        wait_for(app, started["id"], {"running"})
        time.sleep(1.5)
        assert stop(app.process, signal.SIGKILL) == -signal.SIGKILL
        part = Path(data_dir) / "models" / "huggingface" / "burncloud" / "Tiny-GGUF" / (FILE + ".part")
        kept = part.stat().st_size
        assert 0 < kept < size, kept
        assert part.with_name(FILE + ".part.json").exists()

        tiny_hub.faults()
        app = BurnCloud(Path(data_dir), tiny_hub.env())
        try:
            done = wait_for(app, started["id"], {"done", "failed"})
            assert done["state"] == "done", done
            ranges = [r["range"] for r in tiny_hub.cdn_requests()]
            assert ranges[0] is None and ranges[-1] == f"bytes={kept}-", ranges
            final = part.with_name(FILE)
            assert hashlib.sha256(final.read_bytes()).hexdigest() == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
            assert not part.exists()
        finally:
            stop(app.process)
