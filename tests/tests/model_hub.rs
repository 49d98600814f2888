//! The model hub against a local hub that speaks Hugging Face's and ModelScope's exact API shapes,
//! with a second "CDN" host: search, file lists, verified downloads, resume after drops and
//! restarts, checksum failures, gated repos, pause/resume/cancel, imports and deletes.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burncloud_server::RouterConfig;
use burncloud_service_api::{HubSource, ModelUsage, SettingsService};
use burncloud_service_models::{ModelHubConfig, TransferPolicy};
use burncloud_tests::hub_mock::{sha256_hex, Faults, HubMock, MockRepo};
use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::Harness;

/// A structurally valid GGUF (version 3, no tensors, no metadata) padded with deterministic bytes.
fn synthetic_gguf(size: usize, seed: u8) -> Bytes {
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(b"GGUF");
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    let mut state = u32::from(seed) | 1;
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes.push(state as u8);
    }
    Bytes::from(bytes)
}

fn config_for(dir: &std::path::Path, hub: &HubMock) -> ModelHubConfig {
    let mut config = ModelHubConfig::from_env(dir);
    config.endpoints = HashMap::from([
        (HubSource::Huggingface, hub.endpoint()),
        (HubSource::HfMirror, hub.endpoint()),
        (HubSource::Modelscope, hub.endpoint()),
    ]);
    config.env_tokens.clear();
    config.policy = TransferPolicy {
        stall_timeout: Duration::from_secs(2),
        retries: 3,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    config
}

async fn start(hub: &HubMock) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), hub);
    Harness::open(dir, RouterConfig::default(), config).await
}

async fn wait_for_state(h: &Harness, id: i64, wanted: &[&str]) -> Value {
    let mut last = Value::Null;
    for _ in 0..1500 {
        last = h.get(&format!("/console/api/downloads/{id}")).await;
        if wanted.contains(&last["state"].as_str().unwrap_or("")) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("download {id} never reached {wanted:?}: {last}");
}

async fn download(h: &Harness, source: &str, repo: &str, path: &str) -> i64 {
    let (status, created) = h
        .console(
            reqwest::Method::POST,
            "/console/api/downloads",
            Some(json!({"source": source, "repo": repo, "path": path})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_i64().unwrap()
}

fn one_file_repo(path: &str, bytes: Bytes) -> MockRepo {
    MockRepo::new([(path.to_string(), bytes), ("README.md".to_string(), Bytes::from_static(b"# model card\n"))])
}

#[tokio::test]
async fn search_and_file_lists_speak_both_hub_apis() {
    let hub = HubMock::start().await;
    for index in 0..35 {
        let mut repo = one_file_repo("m-Q4_K_M.gguf", synthetic_gguf(64, index));
        repo.downloads = 1000 - index as u64;
        hub.add_repo(&format!("owner{index:02}/Qwen-{index:02}-GGUF"), repo);
    }
    let shards = MockRepo::new([
        ("Q8_0/big-Q8_0-00001-of-00002.gguf".to_string(), synthetic_gguf(100, 1)),
        ("Q8_0/big-Q8_0-00002-of-00002.gguf".to_string(), synthetic_gguf(50, 2)),
        ("big-IQ3_XXS.gguf".to_string(), synthetic_gguf(70, 3)),
        ("mmproj-big-f16.gguf".to_string(), synthetic_gguf(30, 4)),
        ("README.md".to_string(), Bytes::from_static(b"card")),
    ]);
    hub.add_repo("team/Big-GGUF", shards);
    hub.set_tree_page_size(2);
    let h = start(&hub).await;

    let first = h.get("/console/api/hub/search?source=huggingface&q=qwen").await;
    let repos: Vec<&str> = first["data"].as_array().unwrap().iter().map(|r| r["repo"].as_str().unwrap()).collect();
    assert_eq!(repos.len(), 30, "{first}");
    assert_eq!(repos[0], "owner00/Qwen-00-GGUF", "most downloaded first");
    assert_eq!(first["data"][0]["downloads"], 1000);
    assert_eq!(first["data"][0]["tags"][0], "gguf");
    assert!(first["data"][0]["updated_at"].as_str().unwrap().starts_with("2024-09-19"));
    let cursor = first["next_page"].as_str().expect("a next page").to_string();
    let second = h.get(&format!("/console/api/hub/search?source=huggingface&q=qwen&page={cursor}")).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 5);
    assert!(second["next_page"].is_null());

    let listing = h.get("/console/api/hub/files?source=huggingface&repo=team/Big-GGUF").await;
    let files = listing["files"].as_array().unwrap();
    assert_eq!(files.len(), 5, "every file over paginated tree pages, folders left out: {listing}");
    let by_path = |path: &str| files.iter().find(|f| f["path"] == path).unwrap().clone();
    let shard = by_path("Q8_0/big-Q8_0-00002-of-00002.gguf");
    assert_eq!(shard["quant"], "Q8_0");
    assert_eq!(shard["shard"], json!({"index": 2, "count": 2}));
    assert_eq!(shard["group"], "Q8_0/big-Q8_0-00001-of-00002.gguf");
    assert_eq!(shard["size"], 50);
    assert_eq!(shard["sha256"], sha256_hex(&synthetic_gguf(50, 2)));
    assert_eq!(by_path("big-IQ3_XXS.gguf")["quant"], "IQ3_XXS");
    assert_eq!(by_path("mmproj-big-f16.gguf")["mmproj"], true);
    assert!(by_path("README.md")["sha256"].is_null());
    // No metadata in these files: where they would run is unknown, not guessed.
    assert_eq!(by_path("big-IQ3_XXS.gguf")["fit"], "unknown");
    assert!(by_path("big-IQ3_XXS.gguf")["estimated_bytes"].is_null());

    let modelscope = h.get("/console/api/hub/search?source=modelscope&q=big").await;
    assert_eq!(modelscope["data"][0]["repo"], "team/Big-GGUF", "{modelscope}");
    assert_eq!(modelscope["data"][0]["updated_at"], "2024-09-18T13:20:06Z");
    let ms_files = h.get("/console/api/hub/files?source=modelscope&repo=team/Big-GGUF").await;
    assert_eq!(ms_files["files"].as_array().unwrap().len(), 5, "{ms_files}");

    let (status, error) =
        h.console(reqwest::Method::GET, "/console/api/hub/files?source=huggingface&repo=nobody/none", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, error) =
        h.console(reqwest::Method::GET, "/console/api/hub/files?source=huggingface&repo=../etc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = h.console(reqwest::Method::GET, "/console/api/hub/search?source=nowhere", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_download_is_verified_registered_and_keeps_the_token_off_the_cdn() {
    let hub = HubMock::start().await;
    let model = synthetic_gguf(3 << 20, 7);
    hub.add_repo("bartowski/Tiny-GGUF", one_file_repo("Tiny-Q4_K_M.gguf", model.clone()));
    let h = start(&hub).await;
    h.state.store.set_setting(&HubSource::Huggingface.token_setting(), "hf_secret_token_123").unwrap();

    let id = download(&h, "huggingface", "bartowski/Tiny-GGUF", "Tiny-Q4_K_M.gguf").await;
    let done = wait_for_state(&h, id, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["bytes_done"], model.len());
    assert_eq!(done["bytes_total"], model.len());

    let target = h.data_dir().join("models/huggingface/bartowski/Tiny-GGUF/Tiny-Q4_K_M.gguf");
    assert_eq!(std::fs::read(&target).unwrap(), model.to_vec());
    assert!(!target.with_extension("gguf.part").exists(), "no partial file left");
    let local = h.get("/console/api/models/local").await;
    let entry = &local.as_array().unwrap()[0];
    assert_eq!(entry["id"], done["local_model_id"]);
    assert_eq!(entry["sha256"], sha256_hex(&model));
    assert_eq!(entry["quant"], "Q4_K_M");
    assert_eq!(entry["source"], "huggingface");
    assert_eq!(entry["repo"], "bartowski/Tiny-GGUF");
    assert_eq!(entry["size"], model.len());
    assert_eq!(entry["in_use"], false);
    assert_eq!(entry["path"], target.to_string_lossy().as_ref());

    let hub_calls = hub.hub_authorizations();
    assert!(!hub_calls.is_empty() && hub_calls.iter().all(|a| a.as_deref() == Some("Bearer hf_secret_token_123")));
    let cdn = hub.cdn_requests();
    assert!(!cdn.is_empty());
    assert!(cdn.iter().all(|r| r.authorization.is_none()), "the token never reaches the CDN: {cdn:?}");

    let (status, again) = h
        .console(
            reqwest::Method::POST,
            "/console/api/downloads",
            Some(json!({"source": "huggingface", "repo": "bartowski/Tiny-GGUF", "path": "Tiny-Q4_K_M.gguf"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(again["error"]["message"].as_str().unwrap().contains("already downloaded"));
}

#[tokio::test]
async fn dropped_connections_resume_where_they_stopped_on_both_hubs() {
    let hub = HubMock::start().await;
    let model = synthetic_gguf(2 << 20, 9);
    hub.add_repo("owner/Drop-GGUF", one_file_repo("drop-Q8_0.gguf", model.clone()));
    let h = start(&hub).await;

    for (source, style) in [("huggingface", "hf/"), ("modelscope", "ms/")] {
        hub.set_faults(Faults { cut_after: Some(700_000), cut_times: 2, ..Faults::default() });
        let before = hub.cdn_requests().len();
        let id = download(&h, source, "owner/Drop-GGUF", "drop-Q8_0.gguf").await;
        let done = wait_for_state(&h, id, &["done", "failed"]).await;
        assert_eq!(done["state"], "done", "{source}: {done}");
        let target = h.data_dir().join(format!("models/{source}/owner/Drop-GGUF/drop-Q8_0.gguf"));
        assert_eq!(sha256_hex(&std::fs::read(&target).unwrap()), sha256_hex(&model), "{source}");
        let requests: Vec<_> = hub.cdn_requests()[before..].to_vec();
        assert_eq!(requests.len(), 3, "{source}: first try, two resumes: {requests:?}");
        assert!(requests.iter().all(|r| r.path.starts_with(style)));
        assert_eq!(requests[0].range, None);
        // The resume starts at what reached the disk: at most the bytes sent before the cut.
        let resumed_at = |request: &burncloud_tests::hub_mock::CdnRequest| -> u64 {
            let range = request.range.as_deref().expect("a resume asks for a range");
            range.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).unwrap().parse().unwrap()
        };
        let (first_resume, second_resume) = (resumed_at(&requests[1]), resumed_at(&requests[2]));
        assert!(0 < first_resume && first_resume <= 700_000, "{source}: {requests:?}");
        assert!(first_resume < second_resume && second_resume <= first_resume + 700_000, "{source}: {requests:?}");
    }
}

#[tokio::test]
async fn a_stalled_connection_is_abandoned_and_resumed() {
    let hub = HubMock::start().await;
    let model = synthetic_gguf(1 << 20, 10);
    hub.add_repo("owner/Stall-GGUF", one_file_repo("stall-Q4_0.gguf", model.clone()));
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path(), &hub);
    config.policy.stall_timeout = Duration::from_millis(300);
    let h = Harness::open(dir, RouterConfig::default(), config).await;
    hub.set_faults(Faults { stall_after: Some(300_000), stall_times: 1, ..Faults::default() });

    let id = download(&h, "huggingface", "owner/Stall-GGUF", "stall-Q4_0.gguf").await;
    let done = wait_for_state(&h, id, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    let requests = hub.cdn_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].range.as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"), "{requests:?}");
    let target = h.data_dir().join("models/huggingface/owner/Stall-GGUF/stall-Q4_0.gguf");
    assert_eq!(sha256_hex(&std::fs::read(&target).unwrap()), sha256_hex(&model));
}

#[tokio::test]
async fn a_corrupted_byte_fails_the_checksum_and_removes_the_file() {
    let hub = HubMock::start().await;
    let model = synthetic_gguf(1 << 20, 11);
    hub.add_repo("owner/Bad-GGUF", one_file_repo("bad-Q4_0.gguf", model));
    let h = start(&hub).await;
    hub.set_faults(Faults { corrupt_next: true, ..Faults::default() });

    let id = download(&h, "huggingface", "owner/Bad-GGUF", "bad-Q4_0.gguf").await;
    let failed = wait_for_state(&h, id, &["done", "failed"]).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("checksum") && error.contains("removed"), "{error}");
    let folder = h.data_dir().join("models/huggingface/owner/Bad-GGUF");
    let left: Vec<_> =
        std::fs::read_dir(&folder).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
    assert!(h.get("/console/api/models/local").await.as_array().unwrap().is_empty());

    let resumed = h.post(&format!("/console/api/downloads/{id}/resume"), json!({})).await;
    assert_eq!(resumed["state"], "queued");
    assert_eq!(wait_for_state(&h, id, &["done", "failed"]).await["state"], "done", "a clean retry succeeds");
}

#[tokio::test]
async fn gated_and_missing_repos_say_what_to_do() {
    let hub = HubMock::start().await;
    let mut private = one_file_repo("p-Q4_K_M.gguf", synthetic_gguf(1000, 1));
    private.refuse_with = Some(401);
    private.accepted_token = Some("hf_good".into());
    hub.add_repo("corp/Private-GGUF", private);
    let mut gated = one_file_repo("g-Q4_K_M.gguf", synthetic_gguf(1000, 2));
    gated.refuse_with = Some(403);
    hub.add_repo("meta/Gated-GGUF", gated);
    let h = start(&hub).await;

    let body = |repo: &str, path: &str| Some(json!({"source": "huggingface", "repo": repo, "path": path}));
    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/downloads", body("corp/Private-GGUF", "p-Q4_K_M.gguf")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["error"]["code"], "hub_token_required");
    assert!(error["error"]["message"].as_str().unwrap().contains("access token"), "{error}");

    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/downloads", body("meta/Gated-GGUF", "g-Q4_K_M.gguf")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert_eq!(error["error"]["code"], "hub_gated");
    assert!(error["error"]["message"].as_str().unwrap().contains("license"), "{error}");

    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/downloads", body("corp/Private-GGUF", "missing.gguf")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the repo is still refused before the file is looked up: {error}");
    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/downloads", body("nobody/Nothing", "x.gguf")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/downloads", body("corp/Private-GGUF", "../../etc/passwd")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    h.state.store.set_setting(&HubSource::Huggingface.token_setting(), "hf_good").unwrap();
    let id = download(&h, "huggingface", "corp/Private-GGUF", "p-Q4_K_M.gguf").await;
    assert_eq!(wait_for_state(&h, id, &["done", "failed"]).await["state"], "done");
}

#[tokio::test]
async fn pause_resume_and_cancel() {
    let hub = HubMock::start().await;
    let model = synthetic_gguf(4 << 20, 13);
    hub.add_repo("owner/Slow-GGUF", one_file_repo("slow-Q4_K_M.gguf", model.clone()));
    let h = start(&hub).await;
    hub.set_faults(Faults { throttle_bps: Some(4 << 20), ..Faults::default() });

    let id = download(&h, "huggingface", "owner/Slow-GGUF", "slow-Q4_K_M.gguf").await;
    wait_for_state(&h, id, &["running"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let running = h.get(&format!("/console/api/downloads/{id}")).await;
    assert!(running["bytes_done"].as_u64().unwrap() > 0, "{running}");
    assert!(running["speed_bps"].as_u64().unwrap() > 0, "speed is measured: {running}");
    assert!(running["eta_s"].as_u64().is_some(), "{running}");

    let paused = h.post(&format!("/console/api/downloads/{id}/pause"), json!({})).await;
    assert_eq!(paused["state"], "paused");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let part = h.data_dir().join("models/huggingface/owner/Slow-GGUF/slow-Q4_K_M.gguf.part");
    let held = std::fs::metadata(&part).unwrap().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(std::fs::metadata(&part).unwrap().len(), held, "a paused download writes nothing");
    assert!(held > 0 && held < model.len() as u64);
    let (status, _) = h.console(reqwest::Method::POST, &format!("/console/api/downloads/{id}/pause"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    hub.set_faults(Faults::default());
    let before = hub.cdn_requests().len();
    h.post(&format!("/console/api/downloads/{id}/resume"), json!({})).await;
    assert_eq!(wait_for_state(&h, id, &["done", "failed"]).await["state"], "done");
    let resumed_at = hub.cdn_requests()[before].range.clone().expect("the resume asks for a range");
    assert_eq!(resumed_at, format!("bytes={held}-"));
    let target = h.data_dir().join("models/huggingface/owner/Slow-GGUF/slow-Q4_K_M.gguf");
    assert_eq!(sha256_hex(&std::fs::read(&target).unwrap()), sha256_hex(&model));

    hub.add_repo("owner/Cancel-GGUF", one_file_repo("c-Q4_K_M.gguf", synthetic_gguf(4 << 20, 14)));
    hub.set_faults(Faults { throttle_bps: Some(2 << 20), ..Faults::default() });
    let id = download(&h, "huggingface", "owner/Cancel-GGUF", "c-Q4_K_M.gguf").await;
    wait_for_state(&h, id, &["running"]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let part = h.data_dir().join("models/huggingface/owner/Cancel-GGUF/c-Q4_K_M.gguf.part");
    assert!(part.exists());
    h.delete(&format!("/console/api/downloads/{id}")).await;
    let (status, _) = h.console(reqwest::Method::GET, &format!("/console/api/downloads/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for _ in 0..200 {
        if !part.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!part.exists(), "cancel removes the partial file");
    assert!(!h.data_dir().join("models/huggingface/owner/Cancel-GGUF/c-Q4_K_M.gguf.part.json").exists());
}

#[tokio::test]
async fn a_restart_continues_the_download_from_its_partial_file() {
    let hub = HubMock::start().await;
    let model = synthetic_gguf(4 << 20, 15);
    hub.add_repo("owner/Restart-GGUF", one_file_repo("r-Q4_K_M.gguf", model.clone()));
    hub.set_faults(Faults { throttle_bps: Some(4 << 20), ..Faults::default() });
    let h = start(&hub).await;
    let id = download(&h, "huggingface", "owner/Restart-GGUF", "r-Q4_K_M.gguf").await;
    wait_for_state(&h, id, &["running"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = h.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let part = dir.path().join("models/huggingface/owner/Restart-GGUF/r-Q4_K_M.gguf.part");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < model.len() as u64, "{kept}");
    let sidecar: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("models/huggingface/owner/Restart-GGUF/r-Q4_K_M.gguf.part.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["sha256"], sha256_hex(&model));
    assert_eq!(sidecar["commit"], "0123456789abcdef0123456789abcdef01234567");

    hub.set_faults(Faults::default());
    let before = hub.cdn_requests().len();
    let config = config_for(dir.path(), &hub);
    let h = Harness::open(dir, RouterConfig::default(), config).await;
    let done = wait_for_state(&h, id, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    let resumed = &hub.cdn_requests()[before];
    assert_eq!(resumed.range.as_deref(), Some(format!("bytes={kept}-").as_str()), "resumed, not restarted");
    let target = h.data_dir().join("models/huggingface/owner/Restart-GGUF/r-Q4_K_M.gguf");
    assert_eq!(sha256_hex(&std::fs::read(&target).unwrap()), sha256_hex(&model));
}

#[tokio::test]
async fn a_split_model_downloads_as_one_and_becomes_one_local_model() {
    let hub = HubMock::start().await;
    let parts = [synthetic_gguf(300_000, 21), synthetic_gguf(300_000, 22), synthetic_gguf(100_000, 23)];
    hub.add_repo(
        "owner/Split-GGUF",
        MockRepo::new(
            parts
                .iter()
                .enumerate()
                .map(|(i, bytes)| (format!("Q8_0/s-Q8_0-{:05}-of-00003.gguf", i + 1), bytes.clone())),
        ),
    );
    let h = start(&hub).await;
    let id = download(&h, "huggingface", "owner/Split-GGUF", "Q8_0/s-Q8_0-00002-of-00003.gguf").await;
    let done = wait_for_state(&h, id, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["files"].as_array().unwrap().len(), 3);
    assert_eq!(done["bytes_total"], 700_000);
    let local = h.get(&format!("/console/api/models/local/{}", done["local_model_id"])).await;
    assert!(local["path"].as_str().unwrap().ends_with("s-Q8_0-00001-of-00003.gguf"), "{local}");
    assert_eq!(local["files"].as_array().unwrap().len(), 3);
    assert_eq!(local["size"], 700_000);
}

struct Usage(AtomicBool);

impl ModelUsage for Usage {
    fn model_in_use(&self, _model_id: i64) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn imports_check_the_header_and_deletes_wait_for_instances() {
    let hub = HubMock::start().await;
    let h = start(&hub).await;
    let outside = tempfile::tempdir().unwrap();
    let model_path = outside.path().join("mine-Q5_K_M.gguf");
    let model = synthetic_gguf(200_000, 31);
    std::fs::write(&model_path, &model).unwrap();
    let text_path = outside.path().join("notes.gguf");
    std::fs::write(&text_path, b"this is not a model at all, just text").unwrap();

    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/models/local/import", Some(json!({"path": text_path}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("not a GGUF"), "{error}");
    let (status, _) = h
        .console(reqwest::Method::POST, "/console/api/models/local/import", Some(json!({"path": "relative/x.gguf"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let imported = h.post("/console/api/models/local/import", json!({"path": model_path})).await;
    assert_eq!(imported["source"], "imported");
    assert_eq!(imported["quant"], "Q5_K_M");
    assert_eq!(imported["sha256"], sha256_hex(&model));
    assert_eq!(imported["size"], 200_000);
    let id = imported["id"].as_i64().unwrap();

    let usage = Arc::new(Usage(AtomicBool::new(true)));
    h.state.models.set_usage(usage.clone());
    assert_eq!(h.get("/console/api/models/local").await[0]["in_use"], true);
    let (status, error) = h.console(reqwest::Method::DELETE, &format!("/console/api/models/local/{id}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("stop the instance"), "{error}");
    assert!(model_path.exists());

    usage.0.store(false, Ordering::SeqCst);
    h.delete(&format!("/console/api/models/local/{id}")).await;
    assert!(!model_path.exists(), "delete removes the file");
    assert!(h.get("/console/api/models/local").await.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn listings_and_local_models_say_how_much_memory_a_model_needs_and_where_it_runs() {
    let Some(model) = std::env::var_os("BURNCLOUD_TEST_GGUF").map(std::path::PathBuf::from) else {
        assert!(std::env::var_os("BURNCLOUD_REQUIRE_LLAMA").is_none(), "BURNCLOUD_TEST_GGUF is not set");
        eprintln!("SKIPPED: BURNCLOUD_TEST_GGUF is not set (./scripts/test makes the tiny model)");
        return;
    };
    let tiny = Bytes::from(std::fs::read(&model).unwrap());
    let hub = HubMock::start().await;
    hub.add_repo(
        "burncloud/Tiny-GGUF",
        MockRepo::new([
            ("tiny-F32.gguf".to_string(), tiny.clone()),
            ("tiny-Q8_0.gguf".to_string(), tiny.slice(..)),
            ("mmproj-tiny-f16.gguf".to_string(), synthetic_gguf(64, 9)),
        ]),
    );
    let h = start(&hub).await;
    // A 2 MB model runs wherever there is any memory at all: on the GPU if one is usable, else the CPU.
    let hardware = h.get("/console/api/hardware").await;
    let usable_gpu = hardware["gpus"].as_array().unwrap().iter().any(|g| !g["backends"].as_array().unwrap().is_empty());
    let expected_fit = if usable_gpu { "gpu" } else { "cpu" };

    // The tiny model: 2 layers, 4 KV heads of 16, 64 wide: KV 2 × 4 × (16 + 16) × 2 bytes per token.
    let kv = 2 * 4 * 32 * 2 * 4096;
    let compute = 512 * 4 * (5 * 64 + 2 * 4 * 16);
    let listing = h.get("/console/api/hub/files?source=huggingface&repo=burncloud/Tiny-GGUF").await;
    for file in listing["files"].as_array().unwrap() {
        if file["mmproj"] == true {
            assert_eq!(file["fit"], "unknown", "{file}");
            continue;
        }
        assert_eq!(file["estimated_bytes"], tiny.len() as u64 + kv + compute, "{file}");
        assert_eq!(file["fit"], expected_fit, "{file}");
    }

    let copy = h.data_dir().join("tiny-F32.gguf");
    std::fs::copy(&model, &copy).unwrap();
    let local = h.post("/console/api/models/local/import", json!({"path": copy})).await;
    assert_eq!(local["estimate"]["block_count"], 2, "{local}");
    assert_eq!(local["estimate"]["context_length"], 4096);
    assert_eq!(local["estimate"]["kv_bytes_per_token"], kv / 4096);
    assert_eq!(local["fit"], expected_fit);
    assert!(local["mmproj_path"].is_null(), "no projector beside an imported file: {local}");

    // A model from a repo with a vision projector downloads with it, and deploys with it.
    let download = h
        .post(
            "/console/api/downloads",
            json!({"source": "huggingface", "repo": "burncloud/Tiny-GGUF", "path": "tiny-Q8_0.gguf"}),
        )
        .await;
    assert_eq!(download["bytes_total"], tiny.len() as u64 + 64, "the model and its projector: {download}");
    let done = wait_for_state(&h, download["id"].as_i64().unwrap(), &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    let downloaded = h.get(&format!("/console/api/models/local/{}", done["local_model_id"])).await;
    assert!(downloaded["path"].as_str().unwrap().ends_with("tiny-Q8_0.gguf"), "{downloaded}");
    assert_eq!(downloaded["size"], tiny.len() as u64, "the weights alone");
    let projector = downloaded["mmproj_path"].as_str().expect("the projector beside it");
    assert!(projector.ends_with("mmproj-tiny-f16.gguf") && std::path::Path::new(projector).is_file(), "{downloaded}");
    let deployed = h
        .post("/console/api/instances", json!({"model_id": downloaded["id"], "alias": "tiny-vision", "start": false}))
        .await;
    assert_eq!(deployed["mmproj_path"], projector, "{deployed}");
    assert_eq!(deployed["kind"], "chat");
}
