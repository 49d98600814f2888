//! The Models page rendered against the real services: a real download from a local hub shows up
//! with its progress and as a local model; empty states explain what to do.

use std::collections::HashMap;
use std::time::Duration;

use burncloud_client::testing::PageUnderTest;
use burncloud_client::{AppInfo, Lang, Services};
use burncloud_client_models::Models;
use burncloud_server::{AppState, GatewayLimits, ModelHubConfig};
use burncloud_service_api::{DownloadRequest, DownloadState, HubSource, ModelHubService};
use burncloud_tests::hub_mock::{HubMock, MockRepo};
use bytes::Bytes;

fn gguf(size: usize) -> Bytes {
    let mut bytes = b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    bytes.resize(size, 7);
    Bytes::from(bytes)
}

async fn fixture(hub: &HubMock) -> (tempfile::TempDir, AppState, Services) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ModelHubConfig::from_env(dir.path());
    config.endpoints = HashMap::from([
        (HubSource::Huggingface, hub.endpoint()),
        (HubSource::HfMirror, hub.endpoint()),
        (HubSource::Modelscope, hub.endpoint()),
    ]);
    let state = AppState::open_with_models(dir.path(), GatewayLimits::default(), config).unwrap();
    let info = AppInfo { version: "0.1.0".into(), listen: "127.0.0.1:3000".into(), data_dir: "/tmp/bc".into() };
    let services = Services::from_store(
        state.store.clone(),
        state.monitor.clone(),
        state.admin_keys.clone(),
        state.models.clone(),
        info,
    );
    (dir, state, services)
}

#[tokio::test]
async fn empty_states_say_what_to_do_in_both_languages() {
    let hub = HubMock::start().await;
    let (_dir, _state, services) = fixture(&hub).await;
    let english = PageUnderTest::open(services.clone(), Lang::En, Models).await.text();
    assert!(english.contains("Nothing is downloading."), "{english}");
    assert!(english.contains("No local models yet") && english.contains("import a .gguf file"), "{english}");
    assert!(english.contains("Hugging Face") && english.contains("hf-mirror") && english.contains("ModelScope"));
    let chinese = PageUnderTest::open(services, Lang::Zh, Models).await.text();
    assert!(chinese.contains("当前没有下载任务") && chinese.contains("还没有本机模型"), "{chinese}");
}

#[tokio::test]
async fn a_finished_download_shows_as_done_and_as_a_local_model() {
    let hub = HubMock::start().await;
    hub.add_repo("team/Tiny-GGUF", MockRepo::new([("tiny-Q4_K_M.gguf".to_string(), gguf(2_500_000))]));
    let (_dir, state, services) = fixture(&hub).await;
    let started = state
        .models
        .start_download(DownloadRequest {
            source: HubSource::Huggingface,
            repo: "team/Tiny-GGUF".into(),
            path: "tiny-Q4_K_M.gguf".into(),
        })
        .await
        .unwrap();
    for _ in 0..500 {
        if state.models.get_download(started.id).unwrap().state == DownloadState::Done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let page = PageUnderTest::open(services, Lang::En, Models).await;
    let text = page.text();
    assert!(text.contains("team/Tiny-GGUF · tiny-Q4_K_M.gguf") && text.contains("Done"), "{text}");
    assert!(text.contains("2.50 MB / 2.50 MB"), "{text}");
    let html = page.html();
    assert!(html.contains("data-state=\"done\"") && html.contains("width: 100.0%"), "{html}");
    assert!(text.contains("tiny-Q4_K_M.gguf 2.50 MB Q4_K_M huggingface · team/Tiny-GGUF"), "{text}");
    assert!(text.contains("Idle"), "{text}");
}
