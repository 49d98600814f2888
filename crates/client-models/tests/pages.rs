//! The Models page rendered against the real services: a real download from a local hub shows up
//! with its progress and as a local model; empty states explain what to do.
#![allow(clippy::unwrap_used, reason = "in a test a failed unwrap is the failure report")]

use std::collections::HashMap;
use std::time::Duration;

use burncloud_client::testing::PageUnderTest;
use burncloud_client::{AppInfo, Lang, Services};
use burncloud_client_models::{Deployments, Models};
use burncloud_server::{AppState, InferenceConfig, ModelHubConfig, RouterConfig};
use burncloud_service_api::{
    DownloadRequest, DownloadState, HubSource, ImportRequest, InferenceService, InstanceInput, InstancePatch,
    InstanceState, LocalModelService, ModelHubService,
};
use burncloud_tests::hub_mock::{HubMock, MockRepo};
use bytes::Bytes;

fn gguf(size: usize) -> Bytes {
    let mut bytes = b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    bytes.resize(size, 7);
    Bytes::from(bytes)
}

/// The window's services over a running app's state.
fn services_of(state: &AppState) -> Services {
    let info = AppInfo { version: "0.1.0".into(), listen: "127.0.0.1:3000".into(), data_dir: "/tmp/bc".into() };
    Services::from_store(
        state.store.clone(),
        state.monitor.clone(),
        state.admin_keys.clone(),
        state.models.clone(),
        state.inference.clone(),
        state.playground.clone(),
        info,
    )
}

async fn fixture(hub: &HubMock) -> (tempfile::TempDir, AppState, Services) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ModelHubConfig::from_env(dir.path());
    config.endpoints = HashMap::from([
        (HubSource::Huggingface, hub.endpoint()),
        (HubSource::HfMirror, hub.endpoint()),
        (HubSource::Modelscope, hub.endpoint()),
    ]);
    let state = AppState::open_with_models(dir.path(), RouterConfig::default(), config).unwrap();
    let services = services_of(&state);
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
    assert!(text.contains("Fit unknown"), "a file without metadata is not guessed at: {text}");
}

#[tokio::test]
async fn deployments_explain_the_empty_state_and_show_a_ready_instance_with_its_snippet() {
    let hub = HubMock::start().await;
    let (dir, state, services) = fixture(&hub).await;
    let empty = PageUnderTest::open(services.clone(), Lang::En, Deployments).await.text();
    assert!(empty.contains("Nothing deployed yet") && empty.contains("Models page"), "{empty}");

    let Some(model) =
        std::env::var_os("BURNCLOUD_TEST_GGUF").filter(|_| std::env::var_os("BURNCLOUD_LLAMA_SERVER").is_some())
    else {
        assert!(
            std::env::var_os("BURNCLOUD_REQUIRE_LLAMA").is_none(),
            "BURNCLOUD_REQUIRE_LLAMA is set, but BURNCLOUD_LLAMA_SERVER and BURNCLOUD_TEST_GGUF are not"
        );
        eprintln!("SKIPPED the ready-instance part: BURNCLOUD_LLAMA_SERVER / BURNCLOUD_TEST_GGUF are not set");
        return;
    };
    assert!(empty.contains("llama-server") && empty.contains("version:"), "the binary and its version: {empty}");
    let copy = dir.path().join("tiny.gguf");
    std::fs::copy(model, &copy).unwrap();
    let imported =
        state.models.import_local_model(ImportRequest { path: copy.to_string_lossy().into_owned() }).await.unwrap();
    let instance = state
        .inference
        .create_instance(InstanceInput {
            model_id: imported.id,
            alias: Some("tiny-chat".into()),
            ctx_size: Some(256),
            ..InstanceInput::default()
        })
        .unwrap();
    for _ in 0..400 {
        if state.inference.get_instance(instance.id).unwrap().state == InstanceState::Ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let ready = state.inference.get_instance(instance.id).unwrap();
    assert_eq!(ready.state, InstanceState::Ready);
    let text = PageUnderTest::open(services.clone(), Lang::En, Deployments).await.text();
    assert!(text.contains("tiny-chat Chat Ready"), "its kind beside its state: {text}");
    assert!(text.contains("Unload when idle for 600 s"), "the default idle TTL: {text}");
    assert!(text.contains("Memory for local models (MiB)"), "{text}");
    assert!(text.contains(&format!("Port {}", ready.port.unwrap())), "{text}");
    assert!(text.contains("curl http://127.0.0.1:3000/v1/chat/completions"), "{text}");
    assert!(
        text.contains("&#34;model&#34;: &#34;tiny-chat&#34;"),
        "the snippet names the model (HTML-escaped): {text}"
    );
    let chinese = PageUnderTest::open(services.clone(), Lang::Zh, Deployments).await.text();
    assert!(chinese.contains("运行中") && chinese.contains("停止"), "{chinese}");
    // The real tiny model's metadata is read: it runs here, on the GPU if there is one.
    let models = PageUnderTest::open(services.clone(), Lang::Zh, Models).await.text();
    assert!(models.contains("仅 CPU") || models.contains("可完全放入显存"), "{models}");
    state.inference.stop_instance(instance.id).await.unwrap();
    state.inference.update_instance(instance.id, InstancePatch { pinned: Some(true), idle_ttl_s: None }).unwrap();
    let stopped = PageUnderTest::open(services.clone(), Lang::En, Deployments).await.text();
    assert!(stopped.contains("Stopped") && stopped.contains("the first call that names it loads it"), "{stopped}");
    assert!(stopped.contains("Keep loaded") && stopped.contains("Unpin"), "pinned: {stopped}");
    let chinese = PageUnderTest::open(services, Lang::Zh, Deployments).await.text();
    assert!(chinese.contains("已停止") && chinese.contains("首次调用该模型时会自动加载"), "{chinese}");
}

#[tokio::test]
async fn a_fresh_install_offers_llama_cpp_for_the_detected_hardware_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let mut inference = InferenceConfig::new(dir.path());
    inference.llama_server_env = None;
    let models = ModelHubConfig::from_env(dir.path());
    let state = AppState::open_with_services(dir.path(), RouterConfig::default(), models, inference).unwrap();
    let services = services_of(&state);
    if state.inference.llama_server().is_ok() {
        eprintln!("SKIPPED: a llama-server on PATH is found, so this machine never shows the fresh-install state");
        return;
    }
    let hardware = state.inference.hardware().await.unwrap();
    let english = PageUnderTest::open(services.clone(), Lang::En, Deployments).await.text();
    assert!(english.contains("No llama.cpp yet"), "{english}");
    let variant = match hardware.recommended_variant {
        burncloud_service_api::RuntimeVariant::Cpu => "CPU",
        burncloud_service_api::RuntimeVariant::Vulkan => "Vulkan",
        burncloud_service_api::RuntimeVariant::Cuda => "CUDA",
    };
    assert!(english.contains(&format!("Install llama.cpp ({variant}, ")), "{english}");
    assert!(english.contains(&hardware.cpu.model), "the detected CPU: {english}");
    if hardware.gpus.is_empty() {
        assert!(english.contains("no GPU detected"), "{english}");
    }
    let chinese = PageUnderTest::open(services, Lang::Zh, Deployments).await.text();
    assert!(
        chinese.contains("尚未安装 llama.cpp") && chinese.contains(&format!("安装 llama.cpp ({variant}, ")),
        "{chinese}"
    );
    assert!(chinese.contains("内存") && chinese.contains("下载源"), "{chinese}");
}
