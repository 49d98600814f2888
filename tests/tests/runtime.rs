//! Managed llama.cpp runtimes against a local server that answers like GitHub's releases API, with
//! archives laid out as llama.cpp's Linux releases are (`llama-<tag>/` holding llama-server, its
//! libraries and their links) around the real llama-server `./scripts/test` installs: install,
//! verify, activate, deploy the tiny model on it and call it; switch runtimes; and every fault
//! (no matching build, no checksum, a wrong checksum, an archive that escapes its folder, a build
//! that does not run) leaves the active runtime in place and nothing half-unpacked behind.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use burncloud_server::{InferenceConfig, ModelHubConfig, RouterConfig};
use burncloud_tests::release_mock::{self, Digest, MockAsset, MockRelease};
use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest as _;
use support::{prerequisites, wait_for, Harness};

/// A `llama-<tag>-bin-ubuntu-…-x64.tar.gz` as llama.cpp publishes it: one top folder, the server,
/// the shared libraries it loads (RPATH `$ORIGIN`), and `libX.so → libX.so.0` links.
fn release_archive(server: &Path, tag: &str) -> Bytes {
    static BUILT: OnceLock<Vec<u8>> = OnceLock::new();
    let template = BUILT.get_or_init(|| {
        let folder = server.parent().unwrap();
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                name == "llama-server"
                    || name.ends_with(".so.0")
                    || name.ends_with(".so.1")
                    || (name.ends_with(".so") && !folder.join(format!("{name}.0")).exists())
            })
            .collect();
        names.sort();
        for name in &names {
            let mut header = tar::Header::new_gnu();
            let bytes = std::fs::read(folder.join(name)).unwrap();
            header.set_size(bytes.len() as u64);
            header.set_mode(if name == "llama-server" { 0o755 } else { 0o644 });
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, format!("TAG/{name}"), &bytes[..]).unwrap();
            if let Some(stem) = name.strip_suffix(".0") {
                let mut link = tar::Header::new_gnu();
                link.set_entry_type(tar::EntryType::Symlink);
                link.set_size(0);
                builder.append_link(&mut link, format!("TAG/{stem}"), name).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    });
    // The folder is renamed per tag by rewriting the archive's names, once per tag.
    static RETAGGED: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Bytes>>> = OnceLock::new();
    let mut retagged = RETAGGED.get_or_init(Default::default).lock().unwrap();
    retagged.entry(tag.to_string()).or_insert_with(|| retag(template, tag)).clone()
}

fn retag(template: &[u8], tag: &str) -> Bytes {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(template));
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().replace("TAG/", &format!("llama-{tag}/"));
        let mut header = entry.header().clone();
        if header.entry_type() == tar::EntryType::Symlink {
            let target = entry.link_name().unwrap().unwrap().into_owned();
            builder.append_link(&mut header, &path, target).unwrap();
        } else {
            builder.append_data(&mut header, &path, &mut entry).unwrap();
        }
    }
    Bytes::from(builder.into_inner().unwrap().finish().unwrap())
}

/// A tar.gz with one regular file, its name written raw (as an attacker would).
fn archive_with_entry(name: &str, contents: &[u8], mode: u32) -> Bytes {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    let raw = &mut header.as_old_mut().name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    builder.append(&header, contents).unwrap();
    Bytes::from(builder.into_inner().unwrap().finish().unwrap())
}

fn asset(name: &str, bytes: Bytes, digest: Digest) -> MockAsset {
    MockAsset { name: name.to_string(), bytes, digest }
}

fn cpu(tag: &str) -> String {
    format!("llama-{tag}-bin-ubuntu-x64.tar.gz")
}

fn vulkan(tag: &str) -> String {
    format!("llama-{tag}-bin-ubuntu-vulkan-x64.tar.gz")
}

/// The releases the tests serve, newest first; the faulty ones are older than the good one, so
/// only a request for their tag reaches them.
fn releases(server: &Path) -> Vec<MockRelease> {
    vec![
        // The newest has no Linux build at all: the install falls back to the next.
        MockRelease {
            tag: "b9009".into(),
            assets: vec![asset("llama-b9009-bin-macos-arm64.tar.gz", Bytes::from_static(b"mac"), Digest::True)],
        },
        MockRelease {
            tag: "b9001".into(),
            assets: vec![
                asset(&cpu("b9001"), release_archive(server, "b9001"), Digest::True),
                asset(&vulkan("b9001"), release_archive(server, "b9001"), Digest::True),
            ],
        },
        MockRelease {
            tag: "b9005".into(),
            assets: vec![asset(
                &cpu("b9005"),
                archive_with_entry("llama-b9005/llama-server", b"#!/bin/sh\nexit 3\n", 0o755),
                Digest::True,
            )],
        },
        MockRelease {
            tag: "b9004".into(),
            assets: vec![asset(
                &cpu("b9004"),
                archive_with_entry("../../escaped-by-archive", b"evil", 0o644),
                Digest::True,
            )],
        },
        MockRelease {
            tag: "b9003".into(),
            assets: vec![asset(&cpu("b9003"), release_archive(server, "b9003"), Digest::Wrong)],
        },
        MockRelease {
            tag: "b9002".into(),
            assets: vec![asset(&cpu("b9002"), release_archive(server, "b9002"), Digest::Missing)],
        },
    ]
}

/// A harness whose only llama-server is what it installs (`BURNCLOUD_LLAMA_SERVER` not consulted).
async fn start(releases_url: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let models = ModelHubConfig::from_env(dir.path());
    let mut inference = InferenceConfig::new(dir.path());
    inference.releases_url = releases_url.to_string();
    inference.llama_server_env = None;
    inference.bundled_runtimes = None;
    Harness::open_with(dir, RouterConfig::default(), models, inference).await
}

/// A harness over `dir` whose program folder ships `bundle` (as the Windows installers do).
async fn start_with_bundle(dir: tempfile::TempDir, bundle: &Path) -> Harness {
    let models = ModelHubConfig::from_env(dir.path());
    let mut inference = InferenceConfig::new(dir.path());
    inference.releases_url = "http://127.0.0.1:9/unused".into();
    inference.llama_server_env = None;
    inference.bundled_runtimes = Some(bundle.to_path_buf());
    Harness::open_with(dir, RouterConfig::default(), models, inference).await
}

/// Installs and waits for the download to settle; answers the download's last state.
async fn install(h: &Harness, request: Value) -> Value {
    let (status, download) = h.console(reqwest::Method::POST, "/console/api/runtimes/install", Some(request)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{download}");
    assert_eq!(download["source"], "llama-cpp");
    let id = download["id"].as_i64().unwrap();
    for _ in 0..600 {
        let now = h.get(&format!("/console/api/downloads/{id}")).await;
        if now["state"] == "done" || now["state"] == "failed" {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("runtime download {id} never settled");
}

fn exe_of(pid: u64) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

async fn chat_once(h: &Harness, key: &str, model: &str) {
    let answer = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(key)
        .json(&json!({"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["usage"]["completion_tokens"], 4, "{answer}");
}

fn leftovers(data_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for folder in [data_dir.join("runtimes"), data_dir.join("runtimes").join(".downloads")] {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-")
                || name.starts_with(".old-")
                || name.ends_with(".part")
                || name.ends_with(".tar.gz")
            {
                found.push(name);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_fresh_install_gets_a_runtime_deploys_on_it_and_switches_builds() {
    let Some((server, model)) = prerequisites() else { return };
    let (releases_url, _) = release_mock::start(releases(&server)).await;
    let h = start(&releases_url).await;

    // A fresh data dir: nothing installed, and deploying says how to get a runtime.
    assert_eq!(h.get("/console/api/runtimes").await, json!([]));
    let hardware = h.get("/console/api/hardware").await;
    assert!(hardware["cpu"]["logical_cores"].as_u64().unwrap() >= 1, "{hardware}");
    assert!(hardware["memory"]["total_bytes"].as_u64().unwrap() > 0, "{hardware}");
    assert!(hardware["runtime_devices"].is_null(), "no runtime yet: {hardware}");
    assert!(["cpu", "vulkan", "cuda"].contains(&hardware["recommended_variant"].as_str().unwrap()));

    let done = install(&h, json!({"variant": "cpu"})).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["repo"], "b9001", "the newest release with a Linux CPU build and a checksum");
    let runtimes = h.get("/console/api/runtimes").await;
    assert_eq!(runtimes.as_array().unwrap().len(), 1, "{runtimes}");
    let runtime = &runtimes[0];
    assert_eq!((runtime["id"].as_str(), runtime["active"].as_bool()), (Some("b9001-cpu"), Some(true)));
    assert!(runtime["version"].as_str().unwrap().starts_with("version:"), "{runtime}");
    let installed = h.data_dir().join("runtimes").join("b9001-cpu");
    assert_eq!(
        PathBuf::from(runtime["server_path"].as_str().unwrap()),
        installed.join("llama-b9001").join("llama-server")
    );
    assert!(installed.join("llama-b9001").join("libggml.so").is_symlink(), "the archive's links are kept");
    assert!(leftovers(h.data_dir()).is_empty(), "{:?}", leftovers(h.data_dir()));
    let found = h.get("/console/api/llama-server").await;
    assert_eq!(found["found_in"], "managed", "{found}");
    let hardware = h.get("/console/api/hardware").await;
    assert!(hardware["runtime_devices"].is_array(), "the runtime's own device list: {hardware}");

    // Deploy the tiny model on it and call it through the gateway.
    let copy = h.data_dir().join("tiny-F32.gguf");
    std::fs::copy(&model, &copy).unwrap();
    let model_id = h.post("/console/api/models/local/import", json!({"path": copy})).await["id"].as_i64().unwrap();
    let instance =
        h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 512, "parallel": 1})).await;
    let id = instance["id"].as_i64().unwrap();
    let ready = wait_for(&h, id, &["ready", "failed"]).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    assert!(exe_of(ready["pid"].as_u64().unwrap()).starts_with(&installed), "runs the managed build");
    let key = h.post("/console/api/tokens", json!({"name": "runtime"})).await["key"].as_str().unwrap().to_string();
    chat_once(&h, &key, "tiny-F32").await;

    // A second build becomes active; the first cannot go while an instance runs on it.
    let done = install(&h, json!({"variant": "vulkan", "tag": "b9001"})).await;
    assert_eq!(done["state"], "done", "{done}");
    let runtimes = h.get("/console/api/runtimes").await;
    let active: Vec<&str> = runtimes
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["active"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["b9001-vulkan"], "{runtimes}");
    let (status, refused) = h.console(reqwest::Method::DELETE, "/console/api/runtimes/b9001-cpu", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("running instance"), "{refused}");
    let (status, refused) = h.console(reqwest::Method::DELETE, "/console/api/runtimes/b9001-vulkan", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("active"), "{refused}");

    // A restart picks up the active build; then the old one can be removed.
    h.post(&format!("/console/api/instances/{id}/restart"), json!({})).await;
    let ready = wait_for(&h, id, &["ready", "failed"]).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    assert!(exe_of(ready["pid"].as_u64().unwrap()).starts_with(h.data_dir().join("runtimes").join("b9001-vulkan")));
    chat_once(&h, &key, "tiny-F32").await;
    assert_eq!(h.delete("/console/api/runtimes/b9001-cpu").await, json!({"deleted": "b9001-cpu"}));
    assert!(!installed.exists());

    // Switching back to a removed build, or to a made-up one, is refused plainly.
    let (status, missing) = h.console(reqwest::Method::POST, "/console/api/runtimes/b9001-cpu/activate", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (status, bad) = h.console(reqwest::Method::POST, "/console/api/runtimes/..%2Fx/activate", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let activated = h.post("/console/api/runtimes/b9001-vulkan/activate", json!({})).await;
    assert_eq!(activated["active"], true);
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
}

#[tokio::test]
async fn faults_leave_the_active_runtime_in_place_and_nothing_half_unpacked() {
    let Some((server, _model)) = prerequisites() else { return };
    let (releases_url, _) = release_mock::start(releases(&server)).await;
    let h = start(&releases_url).await;
    assert_eq!(install(&h, json!({"variant": "cpu", "tag": "b9001"})).await["state"], "done");
    let before = h.get("/console/api/runtimes").await;

    // Refused before anything is downloaded.
    let cases = [
        (json!({"variant": "cpu", "tag": "b9002"}), StatusCode::BAD_GATEWAY, "without a sha256 digest"),
        (json!({"variant": "cpu", "tag": "b9009"}), StatusCode::NOT_FOUND, "has no llama-b9009-bin-ubuntu-x64.tar.gz"),
        (json!({"variant": "cuda"}), StatusCode::NOT_FOUND, "no CUDA build for Linux"),
        (json!({"variant": "cpu", "tag": "b1"}), StatusCode::NOT_FOUND, "no release b1"),
        (json!({"variant": "rocm"}), StatusCode::BAD_REQUEST, "variant"),
        (json!({"variant": "cpu", "tag": "../b9001"}), StatusCode::BAD_REQUEST, "not a runtime id or release tag"),
    ];
    for (request, expected, message) in cases {
        let (status, refused) =
            h.console(reqwest::Method::POST, "/console/api/runtimes/install", Some(request.clone())).await;
        assert_eq!(status, expected, "{request} → {refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains(message), "{request} → {refused}");
    }

    // Downloaded, then refused: a wrong checksum, an archive escaping its folder, a build that
    // does not run. Each download fails with the reason; nothing is executed before its checksum.
    let faults = [
        ("b9003", "failed its checksum"),
        ("b9004", "points outside the folder"),
        ("b9005", "does not run on this machine"),
    ];
    for (tag, reason) in faults {
        let failed = install(&h, json!({"variant": "cpu", "tag": tag})).await;
        assert_eq!(failed["state"], "failed", "{tag}: {failed}");
        assert!(failed["error"].as_str().unwrap().contains(reason), "{tag}: {failed}");
        assert_eq!(h.get("/console/api/runtimes").await, before, "{tag} left the runtimes as they were");
        assert!(leftovers(h.data_dir()).is_empty(), "{tag}: {:?}", leftovers(h.data_dir()));
    }
    assert!(!h.data_dir().join("escaped-by-archive").exists());
    assert!(!h.data_dir().join("runtimes").join("escaped-by-archive").exists());
    assert_eq!(h.get("/console/api/llama-server").await["found_in"], "managed");
}

#[tokio::test]
async fn an_archive_shipped_beside_the_program_becomes_the_first_runtime_once() {
    let Some((server, _model)) = prerequisites() else { return };
    let bundle = tempfile::tempdir().unwrap();
    let good = bundle.path().join(cpu("b9001"));
    let archive = release_archive(&server, "b9001");
    std::fs::write(&good, &archive).unwrap();
    let digest: String = sha2::Sha256::digest(&archive).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(bundle.path().join(format!("{}.sha256", cpu("b9001"))), format!("{digest}  {}\n", cpu("b9001")))
        .unwrap();
    // A second archive whose checksum file does not match: never unpacked, never run.
    std::fs::write(bundle.path().join(vulkan("b9001")), &archive).unwrap();
    std::fs::write(bundle.path().join(format!("{}.sha256", vulkan("b9001"))), "0".repeat(64)).unwrap();

    let h = start_with_bundle(tempfile::tempdir().unwrap(), bundle.path()).await;
    let mut runtimes = Value::Null;
    for _ in 0..600 {
        runtimes = h.get("/console/api/runtimes").await;
        if runtimes.as_array().unwrap().iter().any(|r| r["active"] == true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = runtimes.as_array().unwrap();
    assert_eq!(list.len(), 1, "only the verified archive: {runtimes}");
    assert_eq!((list[0]["id"].as_str(), list[0]["active"].as_bool()), (Some("b9001-cpu"), Some(true)), "{runtimes}");
    assert_eq!(h.get("/console/api/llama-server").await["found_in"], "managed");
    assert!(good.exists(), "the shipped archive stays where the installer put it");
    let installed_at = list[0]["installed_at_ms"].clone();

    // The next start finds it installed and leaves it alone.
    let dir = h.stop().await;
    let h = start_with_bundle(dir, bundle.path()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = h.get("/console/api/runtimes").await;
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again[0]["installed_at_ms"], installed_at);
}
